"""Decode a video in a background thread into batches of cropped, resized frames.

The decoder feeds a bounded queue, so decoding overlaps inference and memory stays bounded;
the consumer never waits when a batch is ready. Batch boundaries are fixed by the output frame
count (batch k holds output frames [k*B, (k+1)*B)), so a resumed run folds the same frames
together as an uninterrupted one.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.video import check_roi, crop_resize, iter_frames, probe_video

DECODER = "pyav"  # what decodes and crops frames; part of a job's fingerprint (_chunk_store)


@dataclass
class FrameBatch:
    """Output frames [first, first + len(index)) of a video, cropped and resized."""

    first: int  # output row of the first frame (counts frames kept after --stride)
    index: np.ndarray  # (B,) decoded frame index
    time_s: np.ndarray  # (B,) presentation time in seconds
    images: np.ndarray  # (B, 3, h, w) uint8


_END = object()


class FrameSource:
    """Iterate FrameBatch objects of `batch` frames from `video`, skipping the first `skip` output frames.

    `decode_seconds` is the time the decoder thread spent decoding and cropping; an exception
    raised while decoding is re-raised in the consumer after the batches decoded before it.
    """

    def __init__(self, video: Path, roi: tuple[int, int, int, int], size: tuple[int, int], *, stride: int = 1,
                 batch: int = 256, skip: int = 0, prefetch: int = 4) -> None:
        info = probe_video(video)
        check_roi(roi, info.width, info.height)
        self.video, self.roi, self.size = video, roi, size
        self.stride, self.batch, self.skip = stride, batch, skip
        self.expected_frames = None if info.frames is None else -(-info.frames // stride)
        self.decode_seconds = 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, name=f"decode-{video.name}", daemon=True)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode(self) -> None:
        h, w = self.size
        index: list[int] = []
        times: list[float] = []
        images: list[np.ndarray] = []
        first = self.skip

        def flush() -> bool:
            """Hand the buffered frames to the consumer; False once the consumer has stopped."""
            nonlocal first
            batch = FrameBatch(first, np.array(index), np.array(times), np.stack(images))
            first += len(index)
            index.clear(), times.clear(), images.clear()
            return self._put(batch)

        try:
            t0 = time.perf_counter()
            for frame in iter_frames(self.video, self.stride, start=self.skip):
                index.append(frame.index)
                times.append(frame.time_s)
                images.append(crop_resize(frame.rgb, self.roi, (h, w)))
                if len(index) == self.batch:
                    self.decode_seconds += time.perf_counter() - t0
                    if not flush():
                        return
                    t0 = time.perf_counter()
            self.decode_seconds += time.perf_counter() - t0
            if index:
                flush()
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it (a partial batch is of no use)
            self._put(exc)

    def __iter__(self) -> Iterator[FrameBatch]:
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()
            self._thread.join(timeout=5)
