"""Video primitives: probe a file, decode its frames (PyAV), crop a region of interest.

Frames come out as RGB uint8 (H, W, 3); crops as (3, h, w), the layout the models take.
Every failure a user can cause (missing file, not a video, no frames, corrupt data, a region
outside the frame) raises VideoError with a message naming the file and the problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FoldedCNNError


class VideoError(FoldedCNNError):
    """A video that cannot be read, or a region that does not fit its frames."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: frame count (None when it does not say), size in pixels, frame rate."""

    frames: int | None
    width: int
    height: int
    fps: float


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: its index in decode order, its time in seconds and its pixels (H, W, 3) uint8 RGB."""

    index: int
    time_s: float
    rgb: np.ndarray


def _open(path: str | Path):
    import av

    path = Path(path)
    if not path.exists():
        raise VideoError(f"video file not found: {path}")
    if not path.is_file():
        raise VideoError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is empty (0 bytes)")
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise VideoError(f"cannot read {path} as a video ({exc})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path} has no video stream")
    return container


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, size and frame rate of the first video stream of `path`, without decoding it."""
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        return VideoInfo(
            frames=int(stream.frames) or None,
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            fps=float(rate) if rate else 0.0,
        )


def iter_frames(path: str | Path, stride: int = 1, start: int = 0) -> Iterator[VideoFrame]:
    """Yield every `stride`-th decoded frame of `path` (indices 0, stride, 2*stride, ...) as RGB (H, W, 3) uint8.

    `start` skips the first `start` of those frames (a resumed job): they are decoded, since the
    decoder must pass through them, but not converted to RGB.

    Raises VideoError for a missing or non-video file, a video with no frames, or data that fails
    to decode (a truncated file may first yield the frames before the damage).
    """
    import av

    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise VideoError(f"stride must be an integer >= 1, got {stride!r}")
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = -1
        try:
            for frame in container.decode(stream):
                index += 1
                if index % stride or index < start * stride:
                    continue
                time_s = float(frame.time) if frame.time is not None else 0.0
                yield VideoFrame(index, time_s, frame.to_ndarray(format="rgb24"))
        except av.FFmpegError as exc:
            raise VideoError(f"{path} is corrupt or truncated after frame {index} ({exc})") from None
        if index < 0:
            raise VideoError(f"{path} has no decodable frames")


def frames_at(path: str | Path, indices: Iterable[int]) -> list[VideoFrame]:
    """The frames of `path` with the given decode-order indices, in index order; indices past the end are absent.

    Every frame up to the last index is decoded (the decoder must pass through them), but only the
    requested ones are converted to RGB. Raises VideoError as iter_frames does.
    """
    import av

    wanted = sorted(set(indices))
    if not wanted:
        return []
    path = Path(path)
    found: list[VideoFrame] = []
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index == wanted[len(found)]:
                    time_s = float(frame.time) if frame.time is not None else 0.0
                    found.append(VideoFrame(index, time_s, frame.to_ndarray(format="rgb24")))
                    if len(found) == len(wanted):
                        break
        except av.FFmpegError as exc:
            raise VideoError(f"{path} is corrupt or truncated ({exc})") from None
    return found


def check_roi(roi: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """Validate a region (x, y, w, h) against a width x height frame; return it as ints or raise VideoError."""
    if len(roi) != 4:
        raise VideoError(f"a region is (x, y, w, h), got {roi!r}")
    x, y, w, h = (int(v) for v in roi)
    if w < 1 or h < 1:
        raise VideoError(f"region {roi} has an empty size")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise VideoError(f"region (x={x}, y={y}, w={w}, h={h}) is outside the {width}x{height} frame")
    return x, y, w, h


def crop_resize(rgb: np.ndarray, roi: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Crop region (x, y, w, h) of an (H, W, 3) uint8 frame and resize it to `size` (h, w): returns (3, h, w) uint8.

    Downscaling uses area averaging (OpenCV INTER_AREA), upscaling bilinear.
    """
    import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise VideoError(f"a frame is (H, W, 3), got shape {rgb.shape}")
    x, y, w, h = check_roi(roi, rgb.shape[1], rgb.shape[0])
    out_h, out_w = size
    crop = rgb[y : y + h, x : x + w]
    interp = cv2.INTER_AREA if out_h <= h and out_w <= w else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(crop), (out_w, out_h), interpolation=interp)
    return np.ascontiguousarray(resized.transpose(2, 0, 1), dtype=np.uint8)
