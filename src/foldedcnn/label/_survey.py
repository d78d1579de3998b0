"""What planning a job reads of each video before decoding it (its probe and content fingerprint, then the
keyframe index of those with frames left to label), read by several processes when a job has many videos:
a demux pass costs ~10 microseconds a packet, so 100,000 one-minute clips are half an hour in one process. A
video that looks unlabelled (ChunkStore.may_need_index) has its index read with its probe, in one opening of
the file (read_for_plan)."""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from ..data.video import index_video, probe_and_index, probe_video
from ..errors import FoldedCNNError
from ..fsio import file_fingerprint
from ._decode_worker import PRELOAD, main_module_hidden

T = TypeVar("T")

# Fewer videos than this many per process are read in this process: starting processes costs more than it saves
VIDEOS_PER_PROCESS = 4


@dataclass(frozen=True)
class Unreadable:
    """What a survey found instead of a value: the FoldedCNNError reading the video raised (a missing, non-video
    or corrupt file), to be raised again for that video alone."""

    message: str

    def raise_(self) -> None:
        raise FoldedCNNError(self.message)


def probe_and_fingerprint(path: Path) -> dict[str, Any]:
    """{"info": probe_video(path), "content": file_fingerprint(path)}, or Unreadable in place of either."""
    info = _attempt(probe_video, path)
    return {"info": info, "content": info if isinstance(info, Unreadable) else _attempt(file_fingerprint, path)}


def read_for_plan(item: tuple[Path, bool]) -> dict[str, Any]:
    """What planning reads of a video first, (path, with_index) -> probe_and_fingerprint(path), with "index":
    keyframe_index(path) too when with_index, the probe and the index then from one opening of the file (a video
    that fails either is read again, each on its own, so each records its own error)."""
    path, with_index = item
    if not with_index:
        return probe_and_fingerprint(path)
    try:
        info, index = probe_and_index(path)
    except (FoldedCNNError, OSError):
        return {**probe_and_fingerprint(path), "index": keyframe_index(path)}
    return {"info": info, "content": _attempt(file_fingerprint, path), "index": index}


def keyframe_index(path: Path) -> Any:
    """index_video(path), or Unreadable."""
    return _attempt(index_video, path)


def _attempt(read: Callable[[Path], Any], path: Path) -> Any:
    try:
        return read(path)
    except FoldedCNNError as exc:
        return Unreadable(str(exc))
    except OSError as exc:  # unreadable file (permissions, a folder): the video's error, not the job's
        return Unreadable(f"cannot read {path}: {exc.strerror or exc}")


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the job's to handle


def survey(read: Callable[[T], Any], paths: Sequence[T], processes: int, progress: bool, what: str) -> list:
    """[read(p) for p in paths], in order: `read` is one of this module's readers (a path each, or read_for_plan's
    (path, with_index)). With more than
    VIDEOS_PER_PROCESS videos per process, `processes` processes read them (from the decoder processes' fork
    server, so PyAV is imported once), with a progress bar saying `what` when `progress`."""
    if len(paths) <= VIDEOS_PER_PROCESS * processes or processes < 2:
        return [read(p) for p in paths]
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    with main_module_hidden():
        pool = ProcessPoolExecutor(processes, mp_context=ctx, initializer=_ignore_sigint)
    try:
        with main_module_hidden():  # processes start as work is handed out
            results = pool.map(read, paths, chunksize=max(1, min(64, len(paths) // (8 * processes))))
            return list(tqdm(results, total=len(paths), desc=what, unit="video", disable=not progress,
                             dynamic_ncols=True))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
