"""Video primitives: probe and index a file, decode its frames (PyAV), crop a region of interest.

Frames come out as RGB uint8 (H, W, 3); crops as (3, h, w), the layout the models take. Given a
region, only the region is converted to RGB: its pixels are cut out of the decoded planes (YUV,
usually) and FFmpeg's scaler converts that small frame, so a 140x140 region of a 768x576 video costs
a twentieth of a full-frame conversion and gives the same pixels (see `_region_frame`).
Every failure a user can cause (missing file, not a video, no frames, corrupt data, a region
outside the frame) raises VideoError with a message naming the file and the problem.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FoldedCNNError


class VideoError(FoldedCNNError):
    """A video that cannot be read, or a region that does not fit its frames."""


class SeekError(VideoError):
    """Frames found after a seek do not match the demuxed index; decoding from the start still works."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: frame count (None when it does not say), size in pixels, frame rate, codec."""

    frames: int | None
    width: int
    height: int
    fps: float
    codec: str = ""


@dataclass(frozen=True)
class VideoIndex:
    """What a demux pass (no decoding) finds: every frame's timestamp in presentation order (N,) and the
    indices of the frames a decoder can start from (keyframes). `seekable` when frames can be located
    by timestamp: every packet has one, no two share one, and frame 0 is a keyframe."""

    pts: np.ndarray  # (N,) int64, sorted
    keyframes: np.ndarray  # (K,) int64 frame indices, sorted

    @property
    def frames(self) -> int:
        return len(self.pts)

    @property
    def seekable(self) -> bool:
        return len(self.pts) > 0 and len(self.keyframes) > 0 and self.keyframes[0] == 0 and \
            bool(np.all(np.diff(self.pts) > 0))

    def keyframe_at_or_before(self, frame: int) -> int:
        """The last keyframe index <= `frame` (where a decoder must start to produce `frame`)."""
        return int(self.keyframes[np.searchsorted(self.keyframes, frame, side="right") - 1])


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: its index in presentation order, its time in seconds and its pixels (H, W, 3) uint8
    RGB (only the region when one was asked for)."""

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
    """Frame count, size, frame rate and codec of the first video stream of `path`, without decoding it."""
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        return VideoInfo(
            frames=int(stream.frames) or None,
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            fps=float(rate) if rate else 0.0,
            codec=stream.codec_context.name,
        )


def index_video(path: str | Path) -> VideoIndex:
    """Demux `path` (no decoding: ~50k packets/s) and return its frames' timestamps and keyframes."""
    import av

    pts, key = [], []
    with _open(path) as container:
        stream = container.streams.video[0]
        try:
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    pts.append(packet.pts)
                    key.append(packet.is_keyframe)
        except av.FFmpegError as exc:
            raise VideoError(f"{path} is corrupt or truncated after packet {len(pts)} ({exc})") from None
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    sorted_pts = np.asarray(pts, dtype=np.int64)[order]
    keyframes = np.nonzero(np.asarray(key, dtype=bool)[order])[0].astype(np.int64)
    return VideoIndex(sorted_pts, keyframes)


def _plane_layout(fmt, width: int, height: int) -> list[tuple[int, int, int]] | None:
    """Per plane of an 8-bit pixel format: (x subsampling, y subsampling, bytes per pixel); None when a plane
    mixes subsamplings (packed 4:2:2 such as yuyv422) or a component is not 8 bits (10-bit, hardware)."""
    planes: dict[int, list] = {}
    for c in fmt.components:
        if c.bits != 8:
            return None
        planes.setdefault(c.plane, []).append(c)
    layout = []
    for p in sorted(planes):
        sizes = {(c.width, c.height) for c in planes[p]}
        if len(sizes) != 1:
            return None
        (w, h), = sizes
        layout.append((round(width / w), round(height / h), len(planes[p])))
    return layout


def _conversion_box(roi: tuple[int, int, int, int], width: int, height: int, align: int) -> tuple[int, int, int, int]:
    """The region (x, y, w, h) grown by 4 chroma samples on each side (chroma upsampling at its edge then sees
    the same neighbours as in a full frame; tested) and aligned to the chroma subsampling `align`, clipped to
    the frame: (x0, y0, x1, y1)."""
    x, y, w, h = roi
    margin = 4 * align
    x0, y0 = max(0, (x - margin) // align * align), max(0, (y - margin) // align * align)
    x1 = min(width, -(-(x + w + margin) // align) * align)
    y1 = min(height, -(-(y + h + margin) // align) * align)
    return x0, y0, x1, y1


def region_rgb(frame, roi: tuple[int, int, int, int]) -> np.ndarray:
    """Region (x, y, w, h) of a decoded PyAV frame as RGB (h, w, 3) uint8, converting only (about) the region.

    The region's rows and columns are cut out of each plane of the decoded frame into a small frame of the
    same pixel format and colour metadata, which FFmpeg's scaler converts to RGB. For 8-bit planar formats
    (yuv420p, yuv422p, yuv444p, nv12, gray, rgb24, ...) whose size is a multiple of the chroma subsampling
    (every 4:2:0 codec's), the pixels equal those of the full-frame conversion (tests/test_data_video.py
    checks it); other formats and odd sizes are converted whole, as before.
    """
    import av

    layout = _plane_layout(frame.format, frame.width, frame.height)
    align = max((max(sx, sy) for sx, sy, _ in layout), default=1) if layout else 1
    if layout is None or frame.width % align or frame.height % align:  # FFmpeg converts these another way
        x, y, w, h = roi
        return full_rgb(frame)[y : y + h, x : x + w]
    x0, y0, x1, y1 = _conversion_box(roi, frame.width, frame.height, align)
    small = av.VideoFrame(x1 - x0, y1 - y0, frame.format.name)
    for src, dst, (sx, sy, px) in zip(frame.planes, small.planes, layout, strict=True):
        rows = np.frombuffer(src, np.uint8).reshape(-1, src.line_size)
        cut = rows[y0 // sy : -(-y1 // sy), x0 // sx * px : -(-x1 // sx) * px]
        np.frombuffer(dst, np.uint8).reshape(-1, dst.line_size)[: cut.shape[0], : cut.shape[1]] = cut
    small.colorspace, small.color_range = frame.colorspace, frame.color_range
    x, y, w, h = roi
    rgb = full_rgb(small)
    return rgb[y - y0 : y - y0 + h, x - x0 : x - x0 + w]


def full_rgb(frame) -> np.ndarray:
    """A decoded PyAV frame as RGB (H, W, 3) uint8: `frame.to_ndarray(format="rgb24")`'s pixels, in one thread."""
    return _reformatter().reformat(frame, format="rgb24", threads=1).to_ndarray()


_local = threading.local()


def _reformatter():
    """This thread's FFmpeg scaler, kept so its context is reused: `frame.to_ndarray(format=...)` builds a new
    one per frame, which cost more than the conversion itself (about 1k vs 3-18k regions/s, 2 cores). Callers
    pass threads=1: FFmpeg's default (automatic) slice threads cost ~250 us per call, 10x the conversion of
    a 140x140 region (27 us)."""
    from av.video.reformatter import VideoReformatter

    if not hasattr(_local, "reformatter"):
        _local.reformatter = VideoReformatter()
    return _local.reformatter


def iter_frames(path: str | Path, stride: int = 1, start: int = 0, *, stop: int | None = None,
                roi: tuple[int, int, int, int] | None = None, index: VideoIndex | None = None,
                threads: int | None = None) -> Iterator[VideoFrame]:
    """Yield every `stride`-th decoded frame of `path` (indices 0, stride, 2*stride, ...) as RGB uint8:
    (H, W, 3), or (h, w, 3) of region `roi` (x, y, w, h) alone, the rest of the frame never converted.

    Output frames [start, stop) are yielded (frame indices start*stride, ...). Without `index` the decoder
    starts at frame 0 and passes through the skipped frames (decoded, not converted). With the `index` of
    a seekable video it starts at the last keyframe before frame start*stride and locates frames by
    their timestamps, so a segment in the middle of a long video costs at most one group of pictures more;
    SeekError when the decoded frames do not match the index (decode without it from where it stopped).
    `threads`: decoder threads (None: FFmpeg's automatic frame/slice threading; 1 where processes do the
    parallel work).

    Raises VideoError for a missing or non-video file, a video with no frames, data that fails
    to decode (a truncated file may first yield the frames before the damage), or a region outside the frame.
    """
    import av

    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise VideoError(f"stride must be an integer >= 1, got {stride!r}")
    path = Path(path)
    first = start * stride
    end = None if stop is None else stop * stride - stride + 1  # frames >= end are not wanted
    with _open(path) as container:
        stream = container.streams.video[0]
        if threads is None:
            stream.thread_type = "AUTO"
        else:
            stream.thread_count = threads
        if roi is not None:
            roi = check_roi(roi, stream.codec_context.width, stream.codec_context.height)
        seek = index is not None and first > 0 and index.seekable
        if seek:
            container.seek(int(index.pts[index.keyframe_at_or_before(first)]), stream=stream, backward=True,
                           any_frame=False)
        index_no, previous = -1, None
        try:
            for frame in container.decode(stream):
                index_no = _located(index, frame.pts, previous, path) if seek else index_no + 1
                if seek and previous is None and index_no > first:
                    raise SeekError(f"{path}: seeking for frame {first} landed on frame {index_no}")
                previous = index_no
                if end is not None and index_no >= end:
                    return
                if index_no % stride or index_no < first:
                    continue
                time_s = float(frame.time) if frame.time is not None else 0.0
                yield VideoFrame(index_no, time_s, full_rgb(frame) if roi is None else region_rgb(frame, roi))
        except av.FFmpegError as exc:
            raise VideoError(f"{path} is corrupt or truncated after frame {index_no} ({exc})") from None
        if index_no < 0:
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
                    found.append(VideoFrame(index, time_s, full_rgb(frame)))
                    if len(found) == len(wanted):
                        break
        except av.FFmpegError as exc:
            raise VideoError(f"{path} is corrupt or truncated ({exc})") from None
    return found


def _located(index: VideoIndex, pts: int | None, previous: int | None, path: Path) -> int:
    """The index of the frame with timestamp `pts`, checked to follow `previous` (no frame skipped)."""
    at = int(np.searchsorted(index.pts, pts)) if pts is not None else len(index.pts)
    if at >= len(index.pts) or index.pts[at] != pts or (previous is not None and at != previous + 1):
        raise SeekError(f"{path}: decoded frame with timestamp {pts} does not follow frame {previous} of the index")
    return at


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


def resize_region(region: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (h, w, 3) uint8 region to `size` (out_h, out_w): returns (3, out_h, out_w) uint8.

    Downscaling uses area averaging (OpenCV INTER_AREA), upscaling bilinear.
    """
    import cv2

    if region.ndim != 3 or region.shape[2] != 3:
        raise VideoError(f"a frame is (H, W, 3), got shape {region.shape}")
    out_h, out_w = size
    h, w = region.shape[:2]
    interp = cv2.INTER_AREA if out_h <= h and out_w <= w else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(region), (out_w, out_h), interpolation=interp)
    return np.ascontiguousarray(resized.transpose(2, 0, 1), dtype=np.uint8)


def crop_resize(rgb: np.ndarray, roi: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Crop region (x, y, w, h) of an (H, W, 3) uint8 frame and resize it to `size` (h, w): returns (3, h, w) uint8."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise VideoError(f"a frame is (H, W, 3), got shape {rgb.shape}")
    x, y, w, h = check_roi(roi, rgb.shape[1], rgb.shape[0])
    return resize_region(rgb[y : y + h, x : x + w], size)
