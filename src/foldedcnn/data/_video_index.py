"""VideoIndex: where each frame of a video is (timestamps, keyframes, offsets), saved and loaded."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..fsio import atomic_path
from ._video_errors import VideoError

# The rules an index is made by, saved with it: an index saved under other rules (an older foldedcnn's: 1, before
# the bare streams other than H.264/HEVC were counted from their frames' offsets) is not loaded, so the video is
# indexed again. Raised whenever what an index holds for the same file changes.
INDEX_RULES = 2


@dataclass(frozen=True)
class VideoIndex:
    """What a demux pass (no decoding) finds: every frame's timestamp in presentation order (N,) and the
    indices of the frames a decoder can start from (keyframes). `seekable` when frames can be located
    by timestamp: every packet has one, no two share one, and frame 0 is a keyframe. A window of it
    (`window`: what a decoder of one segment reads) holds frames start .. start + N - 1.

    A bare stream (a camera's .h264, .mjpeg or .m2v dump) has no timestamps: its index numbers the frames (pts: their
    numbers, time_base: one frame's seconds), its keyframes are the pictures a decoder can start from and count on
    (_bare_streams.starts_counting: an IDR picture, a JPEG, ...; none, and it is not seekable, where it has no such
    picture), and `offsets` says where each starts in the file. A decoder of a segment reads from the keyframe's
    offset and counts frames from its number (the frames from it on in the file are the frames from its number on
    in display order). So does an AVI with B-frames whose keyframes are IDR pictures (its timestamps, decode-order
    counters, do not locate the frames decoded): its decoders seek to a keyframe by its counter, check the offset,
    and count."""

    pts: np.ndarray  # (N,) int64, sorted: the timestamps of frames start .. start + N - 1
    keyframes: np.ndarray  # (K,) int64 frame indices, sorted
    time_base: float = 0.0  # seconds per pts unit (0: unknown)
    start: int = 0  # the frame pts[0] belongs to: 0, or where a window begins (a keyframe)
    offsets: np.ndarray | None = None  # (K,) int64 byte offsets of the keyframes where frames are counted; or None

    @property
    def frames(self) -> int:
        """The frame after the index's last: the video's frame count (for a window, where it ends)."""
        return self.start + len(self.pts)

    @cached_property
    def seekable(self) -> bool:
        """Worked out once: a day-long recording's index holds millions of timestamps, and planning its
        segments asks thousands of times."""
        return len(self.pts) > 0 and len(self.keyframes) > 0 and self.keyframes[0] == self.start and \
            bool(np.all(np.diff(self.pts) > 0))

    @property
    def by_timestamp(self) -> bool:
        """Whether frames are found after a seek by their timestamps: seekable, and not a bare stream's (whose
        decoders read from a keyframe's offset and count)."""
        return self.seekable and self.offsets is None

    def seconds(self, frames: np.ndarray, fps: float) -> np.ndarray:
        """Presentation times (B,) in seconds of frame indices `frames` (B,): as the CPU decoder's frames carry
        them (their timestamps) where the index has them, else frame / `fps` (a decoder that does not give
        timestamps, NVDEC's, then writes the same times)."""
        if self.seekable and self.time_base and len(frames) and self.start <= frames.min() and \
                frames.max() < self.frames:
            return self.pts[frames - self.start] * self.time_base
        return frames / fps

    def is_keyframe(self, frame: int) -> bool:
        """Whether a decoder can start from frame `frame`."""
        at = int(np.searchsorted(self.keyframes, frame))
        return at < len(self.keyframes) and int(self.keyframes[at]) == frame

    def keyframe_at_or_before(self, frame: int) -> int:
        """The last keyframe index <= `frame` (where a decoder must start to produce `frame`); `frame` at or after
        the first keyframe."""
        return int(self.keyframes[np.searchsorted(self.keyframes, frame, side="right") - 1])

    def window(self, first: int, end: int | None) -> VideoIndex:
        """The part of a seekable index that a decoder of frames [first, end) reads (end None: to the end of the
        video): from the keyframe at or before `first` through frame `end`, whose timestamp tells the decoder
        it is past the frames wanted. A worker decoding one segment of a day-long recording is sent this (a
        share of its frames' timestamps), not the whole index (20 MB at 30 frames/s). An index that is not
        seekable comes back whole: its decoders start at frame 0 and only count frames."""
        if not self.seekable:
            return self
        lo = self.keyframe_at_or_before(first)
        hi = self.frames if end is None else min(self.frames, end + 1)
        keys = slice(np.searchsorted(self.keyframes, lo), np.searchsorted(self.keyframes, hi))
        return VideoIndex(self.pts[lo - self.start:hi - self.start], self.keyframes[keys], self.time_base, lo,
                          None if self.offsets is None else self.offsets[keys])

    def save(self, path: Path) -> None:
        """Write the index to `path` as a NumPy .npz of plain arrays (pts, keyframes, time_base, offsets where it has
        them, and the INDEX_RULES it was made by), atomically; a whole index (start 0), not a window."""
        if self.start:
            raise ValueError("a window of an index is not saved: save the index it was cut from")
        bare = {} if self.offsets is None else {"offsets": self.offsets}
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, pts=self.pts, keyframes=self.keyframes, time_base=np.float64(self.time_base),
                     rules=np.int64(INDEX_RULES), **bare)

    @classmethod
    def load(cls, path: Path) -> VideoIndex:
        """An index written by `save` (never unpickled); VideoError when `path` is not one, or was made by other rules
        (INDEX_RULES: index the video again)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                pts, keyframes, time_base = z["pts"], z["keyframes"], z["time_base"]
                offsets = z["offsets"] if "offsets" in z.files else None
                rules = int(z["rules"]) if "rules" in z.files else 1
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise VideoError(f"{path} is not a saved video index ({exc})") from None
        if not (pts.ndim == keyframes.ndim == 1 and time_base.ndim == 0 and pts.dtype == keyframes.dtype == np.int64
                and time_base.dtype == np.float64) or (offsets is not None and (
                    offsets.dtype != np.int64 or offsets.shape != keyframes.shape)):
            raise VideoError(f"{path} is not a saved video index (arrays of other shapes or types)")
        if rules != INDEX_RULES:
            raise VideoError(f"{path} is a video index made by other rules ({rules}, these are {INDEX_RULES}): index "
                             "the video again")
        return cls(pts, keyframes, float(time_base), offsets=offsets)
