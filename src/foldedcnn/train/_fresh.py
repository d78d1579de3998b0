"""Fresh training images every epoch: load_data(spec, "train", draw=epoch), drawn in worker processes ahead of
training so that generating the next epochs overlaps training on this one."""

from __future__ import annotations

import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from types import TracebackType
from typing import TYPE_CHECKING

import torch

from .._parent_watch import exit_with_parent

if TYPE_CHECKING:
    from ..data import LabelledImages


def _worker_start(parent: int) -> None:
    """One torch thread; Ctrl-C left to the training run (it shuts the pool down; a worker's own KeyboardInterrupt
    printed a traceback per worker); and exit once process `parent` (the training run) is gone: a run killed with
    SIGKILL cannot shut its pool down, and its workers would otherwise wait for work forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    exit_with_parent(parent)


def _draw(spec: str, epoch: int) -> LabelledImages:
    from ..data import load_data

    return load_data(spec, "train", draw=epoch)


class FreshDraws:
    """Epoch e's training images (uint8 (N, C, H, W), labels (N,)) of a generated data `spec`, e >= 1.

    Call it with an epoch: it returns that epoch's images (the data's draw epoch + `offset`: a second stage
    of training after `offset` epochs of a first one sees new images), drawing them now unless a worker already has,
    and starts the next `workers` epochs (up to `epochs` - 1) in `workers` spawned processes. The images
    are a pure function of (spec, epoch), whatever the workers or the order of calls. Use as a context
    manager (or call close) so the workers end with the run.
    """

    def __init__(self, spec: str, epochs: int, workers: int = 1, offset: int = 0) -> None:
        self._spec, self._epochs, self._ahead, self._offset = spec, epochs, workers, offset
        self._pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_start,
                                         initargs=(os.getpid(),))
        self._pending: dict[int, Future[LabelledImages]] = {}
        self._submit(range(1, min(epochs, 1 + workers)))

    def _submit(self, epochs: range) -> None:
        for e in epochs:
            if e not in self._pending:
                self._pending[e] = self._pool.submit(_draw, self._spec, e + self._offset)

    def __call__(self, epoch: int) -> LabelledImages:
        for stale in [e for e in self._pending if e < epoch]:  # a resumed run skips the epochs it has done
            self._pending.pop(stale).cancel()
        self._submit(range(epoch, min(self._epochs, epoch + 1 + self._ahead)))
        return self._pending.pop(epoch).result()

    def close(self) -> None:
        """Stop the workers (drawings not yet started are dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> FreshDraws:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
