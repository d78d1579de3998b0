"""A pool of decoder processes feeding one consumer (the Engine's process) through shared memory.

Each worker owns a shared-memory block of `slots` batch slots (images (B, 3, h, w) uint8, frame indices,
times, which frames decoded). It decodes the segments it is sent (frame_source.SegmentDecoder), fills a free
slot per batch and sends only the slot number and row position through its pipe; the consumer hands the slot
back once it has used the frames. One pipe per worker and no shared lock: a worker killed at any moment leaves the
others untouched. Its segment is sent again from the first row the consumer has not received, so no
batch is lost, and none is duplicated (batches are identified by their first row). While more than two tasks
per worker wait, a worker is sent its next task while it decodes one: between tasks it would otherwise
wait for the consumer to finish labelling a batch (benchmarks/results/cpu-2core/video-clips: 200 short
clips); a worker killed holding two redoes the first from its first row not received and the second whole.
A thread of the pool sends the tasks and reads the workers' messages while the consumer labels, so a worker
that finishes a task is sent the next one at once, not after the batches queued in front of its report.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import numpy as np

from ..data.video import VideoIndex
from .frame_source import FrameBatch, Segment, SegmentDecoder

PRELOAD = ["foldedcnn.label._decode_pool", "av", "cv2"]  # what the fork server imports once for every worker
# Decoder processes run this much nicer than the consumer, so the Engine labels each batch as it comes instead
# of sharing a core with the decoders and leaving a backlog to clear alone once decoding ends (part of the
# gain in benchmarks/results/cpu-2core/video.md).
DECODER_NICENESS = 10


@dataclass(frozen=True)
class DecodeTask:
    """What a worker needs to decode one segment."""

    path: Path
    segment: Segment
    rois: tuple[tuple[int, int, int, int], ...]  # the regions of each frame, one output each
    size: tuple[int, int]
    stride: int
    batch: int
    index: VideoIndex | None
    outputs: tuple[int, ...] = ()  # what the job labels from each region (its JobVideo numbers)
    piece: int = 0  # > 0: the last batch comes in batches of this many rows (SegmentDecoder), set by DecodePool.run


@dataclass
class Decoded:
    """A batch of `task` ready in shared memory; call `release()` once its images are no longer needed."""

    task: DecodeTask
    batch: FrameBatch
    release: object


@dataclass
class Finished:
    """`task` is done: its last row is end_row - 1; `reached_end` when the video ended before stop_row;
    `error` when decoding failed (the batches before it were delivered); `decode_s` the worker's time
    spent decoding it (not waiting for free slots); `cpu_s` the CPU time its decoder process used since the
    task before it ended (for its first task, since the process started), so the Finished of a job sum to
    its decoder processes' CPU time (less that of processes that died, and of their exits). Where the worker
    waited: `slot_wait_s` for the consumer to free a slot during the task, `idle_s` for the task itself, from
    the end of its task before (for its first task, from when it was ready)."""

    task: DecodeTask
    end_row: int
    reached_end: bool
    error: str | None = None
    decode_s: float = 0.0
    cpu_s: float = 0.0
    slot_wait_s: float = 0.0
    idle_s: float = 0.0


class _Slots:
    """Views of one worker's shared-memory block: `slots` batches of (batch, 3, h, w) images, indices, times, and
    whether each frame decoded (FrameBatch.decoded)."""

    def __init__(self, shm: SharedMemory, slots: int, batch: int, shape: tuple[int, int, int]) -> None:
        n_img = slots * batch * int(np.prod(shape))
        self.images = np.ndarray((slots, batch, *shape), np.uint8, shm.buf)
        self.index = np.ndarray((slots, batch), np.int64, shm.buf, offset=n_img)
        self.time_s = np.ndarray((slots, batch), np.float64, shm.buf, offset=n_img + 8 * slots * batch)
        self.decoded = np.ndarray((slots, batch), np.bool_, shm.buf, offset=n_img + 16 * slots * batch)

    @staticmethod
    def nbytes(slots: int, batch: int, shape: tuple[int, int, int]) -> int:
        return slots * batch * (int(np.prod(shape)) + 17)


class _Dispatch:
    """The events of `produce(wake)`, made on a thread of their own and handed over through a queue: iterating
    yields them (and raises what stopped the thread). end() makes the thread stop at its next event and sends a
    message to the Connection `wake` (for a wait() on it), then waits for the thread; called again after a wait
    that was interrupted (a second Ctrl-C), it waits again."""

    def __init__(self, produce: Callable[[Connection], Iterable]) -> None:
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = mp.Pipe(duplex=False)
        self._thread = threading.Thread(target=self._run, args=(produce,), name="foldedcnn-pool", daemon=True)
        self._thread.start()

    def _run(self, produce: Callable[[Connection], Iterable]) -> None:
        try:
            for event in produce(self._wake_r):
                if self._stop.is_set():
                    return
                self._events.put(event)
        except BaseException as exc:  # noqa: BLE001 - raised in the consumer's thread by __iter__
            self._events.put(exc)
            return
        self._events.put(_END)

    def __iter__(self) -> Iterator:
        while (event := self._events.get()) is not _END:
            if isinstance(event, BaseException):
                raise event
            yield event

    def end(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._wake_w.send(None)
        self._thread.join()
        if not self._wake_w.closed:
            self._wake_r.close()
            self._wake_w.close()


_END = object()  # a _Dispatch thread has no more events


def _worker(conn: Connection, shm_name: str, slots: int, batch: int, shape: tuple[int, int, int]) -> None:
    """Decode the tasks sent through `conn` into free slots until sent None."""
    cpu_from = time.process_time()
    import cv2

    from ..errors import FoldedCNNError

    cv2.setNumThreads(1)
    os.nice(DECODER_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the job's to handle: it stops the workers
    shm = SharedMemory(shm_name)
    views = _Slots(shm, slots, batch, shape)
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


class _Worker:
    def __init__(self, ctx, slots: int, batch: int, shape: tuple[int, int, int]) -> None:
        self.shm = SharedMemory(create=True, size=_Slots.nbytes(slots, batch, shape))
        self.views = _Slots(self.shm, slots, batch, shape)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, self.shm.name, slots, batch, shape), daemon=True,
                                name="foldedcnn-decoder")
        with main_module_hidden():
            self.proc.start()
        child.close()
        self.tasks: deque[DecodeTask] = deque()  # sent to it, in order: the first one runs, the next waits
        self.next_row = 0  # the first row of the running task not yet received
        self.stopping = False
        self.done_at: float | None = None  # when it was told that no task is left for it
        # the pool's thread sends tasks, the consumer's thread frees slots: one message at a time through the pipe
        self._sending = threading.Lock()

    def send(self, message) -> None:
        """Send `message` to the worker whole, whichever thread sends (OSError: the worker is gone)."""
        with self._sending:
            self.conn.send(message)

    def stop(self) -> None:
        """Ask the worker to exit, once (close() waits for it)."""
        if not self.stopping:
            self.stopping = True
            try:
                self.send(None)
            except OSError:  # it is gone already
                pass

    def close(self) -> None:
        if self.proc.is_alive():
            self.stop()
            self.proc.join(timeout=2)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()
        del self.views
        try:
            self.shm.close()
        except BufferError:  # a batch view is still referenced by the consumer; freed with it
            pass
        self.shm.unlink()


def start_decoder_server() -> None:
    """Start the fork server decoder processes come from, without waiting: it imports PyAV and OpenCV (a few
    tenths of a second) while the caller does other work, e.g. builds its Engine. DecodePool starts it
    otherwise, when its first worker starts, and waits for it then."""
    from multiprocessing import forkserver

    mp.set_forkserver_preload(PRELOAD)
    with main_module_hidden():
        forkserver.ensure_running()


class DecodePool:
    """`workers` decoder processes; `run(tasks)` yields Decoded and Finished events as they come.

    Batches of one task arrive in order. Slots per worker bound the memory: a worker waits for a
    released slot before decoding further. A worker that dies is replaced and its task resumed.
    """

    def __init__(self, workers: int, batch: int, shape: tuple[int, int, int], slots: int = 3) -> None:
        if workers < 1:
            raise ValueError(f"a decode pool needs >= 1 worker, got {workers}")
        self._ctx = mp.get_context("forkserver")  # no fork of this (threaded, torch-holding) process
        self._ctx.set_forkserver_preload(PRELOAD)
        self._args = (slots, batch, shape)
        self.workers: list[_Worker] = []
        self._dead: list[_Worker] = []
        self.restarts = 0
        # after run(), summed over the workers: their CPU seconds and waits (Finished.cpu_s, idle_s, slot_wait_s),
        # and their time from being told no task is left for them to the run's end
        self.cpu_s = self.idle_s = self.slot_wait_s = self.done_early_s = 0.0
        # the processes start in the background (each a few ms of waiting for the fork server), so the caller
        # indexes its videos meanwhile; run() waits for them
        self._start_error: BaseException | None = None
        self._starting = threading.Thread(target=self._start, args=(workers,), name="foldedcnn-pool-start")
        self._starting.start()
        self._dispatching: _Dispatch | None = None  # run()'s thread

    def _start(self, workers: int) -> None:
        try:
            for _ in range(workers):
                self.workers.append(_Worker(self._ctx, *self._args))
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread by _started()
            self._start_error = exc

    def _started(self) -> None:
        """Wait until every worker has started; raise what stopped one from starting."""
        self._starting.join()
        if self._start_error is not None:
            raise self._start_error

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc) -> None:
        # a consumer that raised may hold run() unclosed (its traceback keeps it): its thread ends first, or it
        # would see the workers exit as deaths and start others
        if self._dispatching is not None:
            self._dispatching.end()
        self._starting.join()
        for w in self.workers:  # all at once: each takes a few ms to exit
            w.stop()
        for w in self.workers + self._dead:
            w.close()

    def run(self, tasks: list[DecodeTask], max_deaths: int = 3, side=None, piece: int = 0
            ) -> Iterator[Decoded | Finished]:
        """Decode `tasks`; a task on which `max_deaths` workers died in a row is Finished with an error.

        A thread of this pool sends the tasks and reads the workers' messages while the consumer works on the
        events it yields, so a worker that finishes a task gets the next one at once, not once the consumer
        has labelled the batches in front of its message (on the 2-core machine labelling a batch of 128 takes
        about 25 ms, and a short video's job a few tenths of a second).
        `side`, when given, is another decoder (the NVDEC one) whose `events` queue is merged in until its
        `pending` tasks have all finished; the consumer holds at most as many of its batches (not yet released)
        as that queue holds, so they stay bounded as the queue bounded them. A pool runs one list of tasks: a
        worker exits as soon as none is left for it, while the others finish (a worker that dies is replaced, and
        its replacement redoes the task).
        While more than 2 tasks per worker wait, each worker holds two: the one it decodes and the next.
        `piece` > 0: the tasks of the last round (sent once no more tasks wait than there are workers) deliver
        their last batch in batches of `piece` rows, so the consumer is not left labelling a whole batch alone
        once decoding ends; only for a consumer whose results do not depend on how batches are cut
        (Engine.batch_independent)."""
        self._started()
        self._dispatching = _Dispatch(lambda wake: self._events(tasks, max_deaths, side, piece, wake))
        try:
            yield from self._dispatching
        finally:
            self._dispatching.end()

    def _events(self, tasks: list[DecodeTask], max_deaths: int, side, piece: int, wake: Connection
                ) -> Iterator[Decoded | Finished]:
        todo = deque(tasks)
        deaths: dict[tuple, int] = {}
        # the side decoder's batches the consumer holds (on the GPU, for NVDEC's): at most as many as its queue holds
        side_room = threading.BoundedSemaphore(side.events.maxsize or 8) if side else None
        while todo or any(w.tasks for w in self.workers) or (side and side.pending):
            for i, w in enumerate(list(self.workers)):
                self._feed(i, w, todo, piece)
            busy = [w for w in self.workers if w.tasks]
            if not busy and not (side and side.pending):
                continue
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy] + [wake],
                         timeout=0.002 if side and side.pending else None)
            if wake in ready:
                return
            while side and side.pending and not side.events.empty() and side_room.acquire(blocking=False):
                event = side.events.get()
                if isinstance(event, Decoded):
                    event = replace(event, release=side_room.release)
                else:
                    side_room.release()
                    side.pending -= 1
                yield event
            for i, w in enumerate(list(self.workers)):
                if not w.tasks or not (w.conn in ready or w.proc.sentinel in ready):
                    continue
                try:
                    while w.tasks and w.conn.poll():  # one that holds none has nothing to send (or has exited)
                        event = self._handle(w, w.conn.recv())
                        if isinstance(event, Finished):  # its next task goes out before the event is queued
                            self._feed(i, w, todo, piece)
                        yield event
                    if w.tasks and not w.proc.is_alive():
                        raise EOFError
                except (EOFError, OSError):  # the worker died: redo its task from the first row not received
                    task, *waiting = w.tasks
                    w.tasks.clear()
                    todo.extendleft(reversed(waiting))  # not begun: back in front, in order
                    key = (task.path, task.segment.video, task.segment.stop_row, w.next_row)
                    deaths[key] = deaths.get(key, 0) + 1
                    if deaths[key] >= max_deaths:
                        yield Finished(task, w.next_row, False, f"{task.path}: the decoder process died "
                                       f"{max_deaths} times at output row {w.next_row} (exit code {w.proc.exitcode})")
                    else:
                        todo.appendleft(_from_row(task, w.next_row))
                    self._replace(i)
        end = time.perf_counter()
        self.done_early_s = sum(end - w.done_at for w in self.workers if w.done_at is not None)
        for w in self.workers:  # the last to finish
            w.stop()

    def _feed(self, i: int, w: _Worker, todo: deque[DecodeTask], piece: int) -> None:
        """Send worker i the next task of `todo` if it holds none, or its second one while it decodes the first
        when more than 2 per worker wait; stop it when none is left for it and it holds none."""
        ahead = len(todo) > 2 * len(self.workers)  # many left: it may hold its next task while it decodes one
        if w.stopping or len(w.tasks) > (1 if ahead else 0):
            return
        if not todo:
            if not w.tasks:
                w.done_at = time.perf_counter()
                w.stop()  # nothing left for it: it exits while the others finish (a dead one's replacement redoes)
            return
        task = replace(todo[0], piece=piece) if piece and len(todo) <= len(self.workers) else todo[0]
        try:
            w.send(task)
        except OSError:  # it died: idle, replace it; holding a task, its death is seen in _events, which redoes it
            if not w.tasks:
                self._replace(i)
            return
        todo.popleft()
        if not w.tasks:
            w.next_row = task.segment.first_row
        w.tasks.append(task)

    def _replace(self, i: int) -> None:
        """Start a new worker in place of worker i, which died (its shared memory is freed at exit)."""
        self.restarts += 1
        self._dead.append(self.workers[i])
        self.workers[i] = _Worker(self._ctx, *self._args)

    def _handle(self, w: _Worker, msg: tuple) -> Decoded | Finished:
        if msg[0] == "batch":
            _, slot, first, n = msg
            images = w.views.images[slot, :n, : 3 * len(w.tasks[0].rois)]
            decoded = w.views.decoded[slot, :n]
            batch = FrameBatch(first, w.views.index[slot, :n], w.views.time_s[slot, :n], images,
                               None if decoded.all() else decoded.copy())
            w.next_row = first + n
            return Decoded(w.tasks[0], batch, lambda w=w, slot=slot: _release(w, slot))
        _, end_row, reached_end, error, decode_s, cpu_s, slot_wait_s, idle_s = msg
        self.cpu_s += cpu_s
        self.idle_s += idle_s
        self.slot_wait_s += slot_wait_s
        task = w.tasks.popleft()
        if w.tasks:
            w.next_row = w.tasks[0].segment.first_row
        return Finished(task, end_row, reached_end, error, decode_s, cpu_s, slot_wait_s, idle_s)


def _release(w: _Worker, slot: int) -> None:
    try:
        w.send(("free", slot))
    except OSError:  # the worker died meanwhile; its replacement has fresh slots
        pass


def _from_row(task: DecodeTask, row: int) -> DecodeTask:
    seg = task.segment
    return replace(task, segment=Segment(seg.video, row, seg.stop_row))
