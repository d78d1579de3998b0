"""Crash-safe file writes (a reader sees the old file or the whole new one, never a part), a cheap fingerprint
of a file's content, and the files of a kind under a folder."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator, Set
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputWriteError


def files_under(folder: Path, suffixes: Set[str]) -> list[Path]:
    """The files under `folder`, at any depth, whose suffix (lower-cased) is in `suffixes`, sorted by path; none
    under a hidden name (a file or a folder on the way starting with ".": macOS's "._clip.mp4" companions,
    .ipynb_checkpoints); none for a missing folder."""
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.rglob("*") if f.suffix.lower() in suffixes and f.is_file()
                  and not any(part.startswith(".") for part in f.relative_to(folder).parts))


def file_fingerprint(path: str | os.PathLike, edge: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's size and its first and last `edge` bytes: changes when the file is replaced by
    another (a new recording at the same path), not when it is copied or moved; reads at most 2 MiB."""
    path = Path(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h.update(str(size).encode())
        h.update(f.read(edge))
        if size > edge:
            f.seek(max(edge, size - edge))
            h.update(f.read(edge))
    return h.hexdigest()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` to write; on success it is fsynced and renamed over `path`.

    The temporary name is unique per process and thread, so concurrent writers (Ray actors,
    parallel jobs) never clobber each other's half-written file; the last rename wins.
    """
    with _renamed_over(Path(path)) as tmp:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str | Iterable[str]) -> None:
    """Write `text`, or its pieces one at a time (a day-long video's CSV, chunk by chunk: never all of it in
    memory), to `path` atomically, as atomic_path does, fsynced through the handle that wrote it: one open per
    file, not two (the video job writes a few files per video)."""
    with _renamed_over(Path(path)) as tmp, open(tmp, "w", newline="") as f:
        for piece in [text] if isinstance(text, str) else text:
            f.write(piece)
        f.flush()
        os.fsync(f.fileno())


@contextmanager
def _renamed_over(path: Path) -> Iterator[Path]:
    """The temporary path beside `path` that this process and thread write it through, renamed over `path` when the
    block ends without an error; removed when the block or the rename fails."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def writing(path: str | os.PathLike, then: str = "rerun the same command") -> Iterator[None]:
    """Turn an OSError raised while writing `path` (disk full, read-only, ...) into one OutputWriteError line."""
    try:
        yield
    except OSError as exc:
        raise OutputWriteError(f"cannot write {path} ({exc.strerror or exc}); free space or fix permissions, then "
                               f"{then}") from None
