"""Frame sources: split videos into segments that decoders work on at the same time; decode one segment.

A segment is a run of output rows [first_row, stop_row) of one video, starting on a batch boundary,
so every batch (and every fold group inside it) holds the same frames however the work was split
or resumed. Its decoder seeks to the last keyframe before its first frame (data.video.iter_frames
with the demuxed index), so a long video is decoded by many workers at once at the cost of at most
one group of pictures per segment. The segment that covers the end of a video runs to the end of
the stream (stop_row None), whatever the container's index said.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.video import SeekError, VideoIndex, iter_frames


@dataclass
class FrameBatch:
    """Output frames [first, first + len(index)) of a video, cropped and resized."""

    first: int  # output row of the first frame (counts frames kept after --stride)
    index: np.ndarray  # (B,) decoded frame index
    time_s: np.ndarray  # (B,) presentation time in seconds
    images: np.ndarray  # (B, 3R, h, w) uint8: the frame's R regions, each 3 channels (R = 1: (B, 3, h, w))
    # (B,) bool: the frames that decoded, the others' packets damaged (images zero); None: all of them
    decoded: np.ndarray | None = None


def region_images(images: np.ndarray, r: int) -> np.ndarray:
    """Region r of a FrameBatch's images (B, 3R, h, w): (B, 3, h, w)."""
    return images[:, 3 * r:3 * r + 3]


def regions_in(images: np.ndarray) -> int:
    """R, the regions per frame of a FrameBatch's images (B, 3R, h, w)."""
    return images.shape[1] // 3


@dataclass(frozen=True)
class Segment:
    """Output rows [first_row, stop_row) of video number `video` of the job (stop_row None: to the end)."""

    video: int
    first_row: int
    stop_row: int | None

    def frames(self, stride: int) -> tuple[int, int | None]:
        """The video frames [first, end) a decoder of the segment passes through at `stride`: from its first row's
        frame to the one after its last row's (end None: to the end of the video)."""
        return self.first_row * stride, None if self.stop_row is None else (self.stop_row - 1) * stride + 1


def segment_index(index: VideoIndex, segment: Segment, stride: int) -> VideoIndex:
    """The part of `index` that a decoder of `segment` reads (VideoIndex.window): the frames from the keyframe
    before its first through the one after its last, so a task carries a share of a long video's index."""
    return index.window(*segment.frames(stride))


def plan_segments(video: int, rows: int, done: set[int], chunk_rows: int, batch: int, max_rows: int,
                  lead_in: Callable[[int], int] | None = None) -> list[Segment]:
    """Segments covering, in order, the rows of the chunks of a video not in `done`, about `max_rows` rows
    each (at least a batch); `rows` is the expected row count. The segment holding the last chunk runs to the
    end of the video (there is one even when `rows` is 0).

    A run of missing rows is cut into as many segments as `max_rows` (rounded up to a batch) asks for, cut
    near equal shares (`cut_rows`); `lead_in(row)`, when given, is what a decoder starting at `row` decodes
    before it (frames since the keyframe before it), so cuts go where a segment starts cheaply."""
    chunks = max(1, -(-rows // chunk_rows))
    per = max(batch, -(-max_rows // batch) * batch)
    segments: list[Segment] = []
    c = 0
    while c < chunks:
        if c in done:
            c += 1
            continue
        end = c
        while end < chunks and end not in done:
            end += 1
        last_run = end == chunks
        start = c * chunk_rows
        stop = max(min(end * chunk_rows, rows) if last_run else end * chunk_rows, start + 1)
        cuts = [start, *cut_rows(start, stop, -(-(stop - start) // per), batch, lead_in), stop]
        segments += [Segment(video, a, None if last_run and b == stop else b) for a, b in itertools.pairwise(cuts)]
        c = end
    return segments


def cut_rows(start: int, stop: int, parts: int, batch: int, lead_in: Callable[[int], int] | None = None
             ) -> list[int]:
    """At most `parts` - 1 batch-aligned rows strictly inside (start, stop), increasing, that cut the run into
    `parts` segments of about equal rows. Each cut is the batch boundary within half a share of its equal-share
    row that costs least: its distance from that row plus `lead_in(row)` (the frames a decoder starting there
    decodes in vain), so a video with sparse keyframes is cut just after them instead of halfway between; a
    cut that would waste more than half a share is not made (its neighbours share its rows)."""
    share = (stop - start) / parts
    waste = lead_in or (lambda row: 0)
    cuts: list[int] = []
    for k in range(1, parts):
        ideal = start + k * share
        low = max((cuts[-1] if cuts else start) + 1, math.ceil(ideal - share / 2))
        rows = range(-(-low // batch) * batch, min(stop - 1, int(ideal + share / 2)) + 1, batch)
        costs = [(abs(r - ideal) + w, r) for r in rows if (w := waste(r)) <= share / 2]
        if costs:
            cuts.append(min(costs)[1])  # the least cost; on a tie the earlier row, as min() over the rows gave
    return cuts


class SegmentDecoder:
    """Decode `segment` of `path` into FrameBatch objects of `batch` rows (the last may be short), each frame's
    regions `rois` (R of them, each (x, y, w, h)) resized to `size` (h, w): (B, 3R, h, w) uint8, one decode for
    all regions. A frame whose packet is damaged comes with zero images, marked in the batch's `decoded` (past
    damaged data, a seekable index's frames are located by their timestamps: iter_frames' `undecodable`). With
    `piece` > 0 the segment's last batch (by the index's frame count for a segment running to the end) comes in
    batches of `piece` rows, each as soon as it is decoded, so the consumer labels the first of them while the
    rest decode (_decode_pool: the job's last ones). After iterating, `end_row` is the row after the last one
    decoded, and `reached_end` says whether the video ended before stop_row."""

    def __init__(self, path: Path, segment: Segment, rois: Sequence[tuple[int, int, int, int]], size: tuple[int, int],
                 stride: int, batch: int, index: VideoIndex | None, piece: int = 0) -> None:
        self.path, self.segment, self.rois, self.size = path, segment, list(rois), size
        self.stride, self.batch, self.index = stride, batch, index
        self.end_row = segment.first_row
        self.reached_end = False
        self.pieces_from = _last_batch_row(segment, batch, stride, index) if piece else None
        self.piece = piece

    def __iter__(self) -> Iterator[FrameBatch]:
        try:
            yield from self._decode(self.index)
        except SeekError:  # the index misled the seek: go on from where it stopped, decoding from the start
            yield from self._decode(None)
        self.reached_end = self.segment.stop_row is None or self.end_row < self.segment.stop_row

    def _rows_next(self) -> int:
        """Rows of the batch that starts at end_row: a piece from pieces_from on."""
        return self.piece if self.pieces_from is not None and self.end_row >= self.pieces_from else self.batch

    def _decode(self, index: VideoIndex | None) -> Iterator[FrameBatch]:
        h, w = self.size
        frames: list[int] = []
        times: list[float] = []
        decoded: list[bool] = []
        images = np.empty((self.batch, 3 * len(self.rois), h, w), np.uint8)
        rows = self._rows_next()
        for frame in iter_frames(self.path, self.stride, self.end_row, stop=self.segment.stop_row, size=self.size,
                                 index=index, threads=1, regions=self.rois,  # one thread: processes work in parallel
                                 undecodable=True):
            if frame.rgb is None:  # it did not decode
                images[len(frames)] = 0
            else:
                images[len(frames)] = frame.rgb.transpose(0, 3, 1, 2).reshape(-1, h, w)  # (R, h, w, 3) -> (3R, h, w)
            frames.append(frame.index)
            times.append(frame.time_s)
            decoded.append(frame.rgb is not None)
            if len(frames) == rows:
                yield self._batch(frames, times, decoded, images[:rows])
                images = np.empty_like(images)
                rows = self._rows_next()
        if frames:
            yield self._batch(frames, times, decoded, images[: len(frames)])

    def _batch(self, frames: list[int], times: list[float], decoded: list[bool], images: np.ndarray) -> FrameBatch:
        batch = FrameBatch(self.end_row, np.array(frames), np.array(times), images,
                           None if all(decoded) else np.array(decoded))
        self.end_row += len(frames)
        frames.clear(), times.clear(), decoded.clear()
        return batch


def _last_batch_row(segment: Segment, batch: int, stride: int, index: VideoIndex | None) -> int | None:
    """The first row of `segment`'s last batch (batches counted from its first row); None when a segment running
    to the end of its video has no index to tell where that is."""
    stop = segment.stop_row
    if stop is None:
        if index is None:
            return None
        stop = -(-index.frames // stride)
    return segment.first_row + max(0, stop - 1 - segment.first_row) // batch * batch
