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
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from multiprocessing.shared_memory import SharedMemory

from ._decode_tasks import Decoded, DecodeTask, Finished, Slots
from ._decode_worker import PRELOAD, decoder_process, main_module_hidden
from .frame_source import FrameBatch, Segment


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


class _Worker:
    def __init__(self, ctx, slots: int, batch: int, shape: tuple[int, int, int]) -> None:
        self.shm = SharedMemory(create=True, size=Slots.nbytes(slots, batch, shape))
        self.views = Slots(self.shm, slots, batch, shape)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=decoder_process, args=(child, self.shm.name, slots, batch, shape), daemon=True,
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
