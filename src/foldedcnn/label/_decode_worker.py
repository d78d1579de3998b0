"""A decoder process of the pool (_decode_pool): how it starts (from a fork server that has imported PyAV and
OpenCV once, without re-running the caller's __main__) and what it runs (decoder_process): the segments sent
through its pipe, decoded into the free slots of its shared-memory block."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory

from ._decode_tasks import DecodeTask, Slots
from .frame_source import SegmentDecoder

PRELOAD = ["foldedcnn.label._decode_worker", "av", "cv2"]  # what the fork server imports once for every worker
# Decoder processes run this much nicer than the consumer, so the Engine labels each batch as it comes instead
# of sharing a core with the decoders and leaving a backlog to clear alone once decoding ends (part of the
# gain in benchmarks/results/cpu-2core/video.md).
DECODER_NICENESS = 10


def decoder_process(conn: Connection, shm_name: str, slots: int, batch: int, shape: tuple[int, int, int]) -> None:
    """Decode the tasks sent through `conn` into free slots until sent None."""
    cpu_from = time.process_time()
    import cv2

    from ..errors import FoldedCNNError

    cv2.setNumThreads(1)
    os.nice(DECODER_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the job's to handle: it stops the workers
    shm = SharedMemory(shm_name)
    views = Slots(shm, slots, batch, shape)
    free = list(range(slots))
    queued: deque[DecodeTask] = deque()  # tasks sent ahead (DecodePool.run), received while one was running
    ready = time.perf_counter()  # since when it has had no task
    try:
        while (task := queued.popleft() if queued else conn.recv()) is not None:
            if isinstance(task, tuple):  # ("free", slot) after the last batch of a task
                free.append(task[1])
                continue
            decoder = SegmentDecoder(task.path, task.segment, task.rois, task.size, task.stride, task.batch,
                                     task.index, task.piece)
            error, waited, t0 = None, 0.0, time.perf_counter()
            idle = t0 - ready
            try:
                for b in decoder:
                    tw = time.perf_counter()
                    while not free:
                        msg = conn.recv()
                        if msg is None:  # the pool closes: no slot will come back
                            return
                        if isinstance(msg, DecodeTask):
                            queued.append(msg)
                        else:
                            free.append(msg[1])
                    waited += time.perf_counter() - tw
                    slot = free.pop()
                    n = len(b.index)
                    views.images[slot, :n, : b.images.shape[1]] = b.images  # a task may have fewer regions than slots
                    views.index[slot, :n], views.time_s[slot, :n] = b.index, b.time_s
                    views.decoded[slot, :n] = True if b.decoded is None else b.decoded
                    conn.send(("batch", slot, b.first, n))
            except FoldedCNNError as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a fault of ours for this segment: record it, not retry it
                error = f"the decoder failed unexpectedly ({type(exc).__name__}: {exc}); please report it"
            cpu, ready = time.process_time(), time.perf_counter()
            conn.send(("done", decoder.end_row, decoder.reached_end, error, ready - t0 - waited, cpu - cpu_from,
                       waited, idle))
            cpu_from = cpu
    finally:
        del views
        shm.close()


_hiding = threading.Lock()
_hidden: dict = {"windows": 0, "saved": {}}  # main_module_hidden windows open (in any thread), what they hide


@contextmanager
def main_module_hidden() -> Iterator[None]:
    """Start a process without making it re-run this process's __main__ (multiprocessing does, to find
    functions defined there; ours is importable by name). A script's main module that imports torch (a
    benchmark) would otherwise cost every worker seconds; `set_forkserver_preload(["__main__"])` does not
    help on Python 3.11-3.12 (the fork server is never given the path). Threads may open windows at once (the
    pool starts its workers in one while the job's survey starts its processes): __main__ is hidden from the
    first window's start to the last one's end."""
    main = sys.modules["__main__"]
    with _hiding:
        if not _hidden["windows"]:
            _hidden["saved"] = {k: main.__dict__[k] for k in ("__spec__", "__file__") if k in main.__dict__}
            main.__dict__.pop("__file__", None)
            main.__spec__ = None
        _hidden["windows"] += 1
    try:
        yield
    finally:
        with _hiding:
            _hidden["windows"] -= 1
            if not _hidden["windows"]:
                main.__dict__.pop("__spec__", None)
                main.__dict__.update(_hidden["saved"])


def start_decoder_server() -> None:
    """Start the fork server decoder processes come from, without waiting: it imports PyAV and OpenCV (a few
    tenths of a second) while the caller does other work, e.g. builds its Engine. DecodePool starts it
    otherwise, when its first worker starts, and waits for it then."""
    from multiprocessing import forkserver

    mp.set_forkserver_preload(PRELOAD)
    with main_module_hidden():
        forkserver.ensure_running()
