"""What the decoder pool (_decode_pool) and its worker processes (_decode_worker) exchange: the segments they
are sent (DecodeTask), the batches and ends they report (Decoded, Finished), and the layout of a worker's
shared-memory block (Slots), through which its images travel instead of its pipe."""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import numpy as np

from ..data.video import VideoIndex
from .frame_source import FrameBatch, Segment


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


class Slots:
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
