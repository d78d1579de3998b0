"""Convert the region of interest of a decoded frame, and only it: cut out of the decoded planes (YUV,
usually) into a small frame that FFmpeg's scaler converts, so a 140x140 region of a 768x576 video costs a
twentieth of a full-frame conversion. region_rgb gives exactly the pixels of the full frame's conversion;
region_resized scales and converts in the same pass, which is what models are fed.

Regions are taken in the frame as shown (_orientation: a phone's portrait video is stored turned): the stored
region that holds them is converted, then turned, so turning costs the region's pixels only.
"""

from __future__ import annotations

import threading

import numpy as np

from ._orientation import Orientation, orientation_of


def _plane_layout(fmt, width: int, height: int) -> list[tuple[int, int, int]] | None:
    """Per plane of a pixel format whose samples are bytes (8 bits) or 16-bit words (9 to 16 bits: yuv420p10le,
    p010le, ...): (x subsampling, y subsampling, bytes per pixel), a "pixel" of a packed 4:2:2 plane (yuyv422,
    uyvy422) being the 2 image pixels that share a chroma pair; None when samples share words (x2rgb10le) or
    are not whole bytes (rgb565le), or the format has a palette. A packed 8-bit format with padding bytes
    (bgr0, rgb0, 0rgb) takes its padded size per pixel."""
    if fmt.has_palette:
        return None
    planes: dict[int, list] = {}
    for c in fmt.components:
        planes.setdefault(c.plane, []).append(c)
    depths = {c.bits for c in fmt.components}
    wide = all(8 < bits <= 16 for bits in depths)
    if not wide and depths != {8}:
        return None
    padding = 0 if wide else fmt.padded_bits_per_pixel - fmt.bits_per_pixel
    if padding and (len(planes) != 1 or fmt.padded_bits_per_pixel % 8):
        return None  # padding bytes whose plane cannot be told: converted whole
    sample = 2 if wide else 1
    layout = []
    for p in sorted(planes):
        if len({c.height for c in planes[p]}) != 1:
            return None
        step = round(width / min(c.width for c in planes[p]))  # image pixels per sample of the sparsest component
        samples = sum(round(step * c.width / width) for c in planes[p])
        layout.append((step, round(height / planes[p][0].height), sample * samples + padding // 8))
    if 8 * sum(px / (sx * sy) for sx, sy, px in layout) != fmt.padded_bits_per_pixel:
        return None  # samples packed into shared words, or a layout this does not know
    return layout


_layouts: dict[tuple[str, int, int], list[tuple[int, int, int]] | None] = {}


def _layout(frame) -> list[tuple[int, int, int]] | None:
    """_plane_layout of `frame`'s format and size, worked out once per format and size."""
    key = (frame.format.name, frame.width, frame.height)
    if key not in _layouts:
        _layouts[key] = _plane_layout(frame.format, frame.width, frame.height)
    return _layouts[key]


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


def region_rgb(frame, roi: tuple[int, int, int, int], orientation: Orientation | None = None) -> np.ndarray:
    """Region (x, y, w, h) of a decoded PyAV frame as shown (`orientation`, by default the frame's own:
    orientation_of) as RGB (h, w, 3) uint8, converting only (about) the region.

    The region's rows and columns are cut out of each plane of the decoded frame into a small frame of the
    same pixel format and colour metadata, which FFmpeg's scaler converts to RGB. For planar formats of 8-bit
    samples (yuv420p, yuv422p, yuv444p, nv12, gray, rgb24, ...) or of 9- to 16-bit samples in 16-bit words
    (yuv420p10le, p010le, ...: 10-bit HEVC; converted whole, a 1080p frame's region took 7 ms instead of
    0.05), and packed 4:2:2 (yuyv422, uyvy422), whose size is a multiple of the chroma subsampling (every 4:2:0
    codec's), the pixels equal those of the full-frame conversion (tests/test_data_video.py checks it); other
    formats and odd sizes are converted whole. Turned as shown, they are the shown full frame's pixels too.
    """
    turn = _turn(frame, orientation)
    return turn.on_image(_stored_region_rgb(frame, turn.stored_box(roi, frame.width, frame.height)))


def _stored_region_rgb(frame, roi: tuple[int, int, int, int]) -> np.ndarray:
    """region_rgb of a region (x, y, w, h) of the frame as stored."""
    layout = _layout(frame)
    align = max((max(sx, sy) for sx, sy, _ in layout), default=1) if layout else 1
    if layout is None or frame.width % align or frame.height % align:  # FFmpeg converts these another way
        x, y, w, h = roi
        return _stored_full_rgb(frame)[y : y + h, x : x + w]
    x0, y0, x1, y1 = _conversion_box(roi, frame.width, frame.height, align)
    x, y, w, h = roi
    rgb = _small_to_rgb(_cut(frame, (x0, y0, x1, y1), layout))
    return rgb[y - y0 : y - y0 + h, x - x0 : x - x0 + w]


def region_resized(frame, roi: tuple[int, int, int, int], size: tuple[int, int],
                   orientation: Orientation | None = None) -> np.ndarray:
    """Region (x, y, w, h) of a decoded PyAV frame as shown (`orientation`, by default the frame's own:
    orientation_of) resized to `size` (h, w): RGB (h, w, 3) uint8, in one pass of
    FFmpeg's scaler over the region's planes (crop, scale and convert together: area averaging when both
    sides shrink, bilinear otherwise).

    This is what the video job and the video data sets (data.noscope.build_video_task) feed a model, so training
    and labelling see the same pixels. Against converting the region to RGB first and resizing it with OpenCV
    (resize_region(region_rgb(...))), pixels differ by about 1 level on average and by at most 8 for 99 % of
    them on vtest.avi (the chroma is averaged before, not after, upsampling, and FFmpeg's area filter is not
    OpenCV's; tests/test_data_video.py checks these bounds in 5 pixel formats), for less work. A region not
    aligned to the chroma subsampling, or a format region_rgb converts whole, takes that slower path instead.
    A frame shown turned has its stored region resized to the turned size, then turned.
    """
    turn = _turn(frame, orientation)
    if turn.as_stored:  # the job's every upright frame: no turn to work out
        return _stored_region_resized(frame, roi, size)
    box = turn.stored_box(roi, frame.width, frame.height)
    return turn.on_image(_stored_region_resized(frame, box, turn.stored_size(size)))


def _stored_region_resized(frame, roi: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """region_resized of a region (x, y, w, h) of the frame as stored."""
    layout = _layout(frame)
    x, y, w, h = roi
    aligned = layout is not None and all(x % sx == w % sx == y % sy == h % sy == 0 for sx, sy, _ in layout)
    if not aligned:
        return resize_rgb(_stored_region_rgb(frame, roi), size)
    out_h, out_w = size
    area = out_h <= h and out_w <= w
    small = _cut(frame, (x, y, x + w, y + h), layout)
    return _small_to_rgb(small, width=out_w, height=out_h, interpolation="AREA" if area else "BILINEAR")


def _small_to_rgb(small, **resize) -> np.ndarray:
    """A frame made by _cut converted to RGB (h, w, 3) uint8 (and resized, given width, height and interpolation):
    its own array, never a view of the reused frame (FFmpeg's scaler hands back an RGB frame of the size asked
    for unconverted)."""
    rgb = _reformatter().reformat(small, format="rgb24", threads=1, **resize)
    return rgb.to_ndarray().copy() if rgb is small else rgb.to_ndarray()


def _cut(frame, box: tuple[int, int, int, int], layout: list[tuple[int, int, int]]):
    """A frame of `frame`'s format and colour metadata holding the pixels of `box` (x0, y0, x1, y1), whose
    edges lie on the chroma subsampling grid of `layout` (or the frame's edges). The frame is this thread's
    for that format and box, reused by the next call: convert it before cutting again."""
    small, places = _small_frame(frame.format.name, box, layout)
    for src, (dst, rows, cols) in zip(frame.planes, places, strict=True):
        dst[...] = np.frombuffer(src, np.uint8).reshape(-1, src.line_size)[rows, cols]
    small.colorspace, small.color_range = frame.colorspace, frame.color_range
    return small


def _small_frame(fmt: str, box: tuple[int, int, int, int], layout: list[tuple[int, int, int]]):
    """This thread's frame of format `fmt` the size of `box`, and per plane the array it is written through and
    the (rows, bytes) of the source plane it takes; made once per format and box (a few per job), so a cut
    costs only its copies."""
    import av

    cache = _local.__dict__.setdefault("small_frames", {})
    key = (fmt, box)
    if key not in cache:
        if len(cache) >= 16:  # many regions in one thread (tests): keep the memory bounded
            cache.clear()
        x0, y0, x1, y1 = box
        small = av.VideoFrame(x1 - x0, y1 - y0, fmt)
        places = []
        for dst, (sx, sy, px) in zip(small.planes, layout, strict=True):
            rows, cols = slice(y0 // sy, -(-y1 // sy)), slice(x0 // sx * px, -(-x1 // sx) * px)
            plane = np.frombuffer(dst, np.uint8).reshape(-1, dst.line_size)
            places.append((plane[: rows.stop - rows.start, : cols.stop - cols.start], rows, cols))
        cache[key] = small, places
    return cache[key]


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) uint8 -> `size` (out_h, out_w, 3) uint8: area averaging (OpenCV INTER_AREA) when both sides
    shrink, bilinear otherwise."""
    import cv2

    out_h, out_w = size
    h, w = rgb.shape[:2]
    interp = cv2.INTER_AREA if out_h <= h and out_w <= w else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(rgb), (out_w, out_h), interpolation=interp)


def full_rgb(frame, orientation: Orientation | None = None) -> np.ndarray:
    """A decoded PyAV frame as RGB (H, W, 3) uint8 as shown (`orientation`, by default the frame's own:
    orientation_of): `frame.to_ndarray(format="rgb24")`'s pixels, turned, converted in one thread."""
    return _turn(frame, orientation).on_image(_stored_full_rgb(frame))


def _turn(frame, orientation: Orientation | None) -> Orientation:
    """`orientation`, or when None the frame's own (orientation_of)."""
    return orientation_of(frame) if orientation is None else orientation


def _stored_full_rgb(frame) -> np.ndarray:
    """full_rgb of the frame as stored."""
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
