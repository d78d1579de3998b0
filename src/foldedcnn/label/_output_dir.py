"""One job per output folder: an advisory lock on `--out/.lock` held for the whole job.

A second `foldedcnn run` (or `--ray`) on the same folder fails at once with one line instead of
interleaving its chunks and final CSVs with the first one's. The lock is an OS file lock
(flock through `filelock`), so it is released when the holder exits, even on SIGKILL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import FoldedCNNError

LOCK_NAME = ".lock"


class OutputBusyError(FoldedCNNError):
    """Another job is writing to the same output folder."""


def prepare_output_dir(out_dir: Path) -> Path:
    """Create `out_dir` (and parents); an existing file or a folder that cannot be created raises one line."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FoldedCNNError(f"--out {out_dir} is a file, not a folder; choose a folder for the CSVs")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FoldedCNNError(f"cannot create --out {out_dir} ({exc.strerror}); choose a folder you can "
                             "write to") from None
    return out_dir


@contextmanager
def exclusive_output(out_dir: Path) -> Iterator[Path]:
    """Hold the job lock of `out_dir` (created if needed) for the duration; raises OutputBusyError if held."""
    prepare_output_dir(out_dir)
    lock = FileLock(out_dir / LOCK_NAME, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputBusyError(f"another foldedcnn job is writing to {out_dir} (it holds {out_dir / LOCK_NAME}); wait "
                              "for it to finish, or choose another --out") from None
    except OSError as exc:
        raise FoldedCNNError(f"cannot write to --out {out_dir} ({exc.strerror}); choose a folder you can write "
                             "to") from None
    try:
        yield out_dir
    finally:
        lock.release()
