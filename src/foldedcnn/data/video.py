"""Video primitives: probe and index a file, decode its frames (PyAV), crop a region of interest.

Frames come out as RGB uint8 (H, W, 3). Given a region, only the region is converted (see `_region`):
exactly the full frame's pixels, or, given a size too, resized in the same pass (what models are fed). Frames,
regions and sizes are those of the frame as shown: a video whose frames carry a display matrix (a phone's
portrait video) is turned as players, FFmpeg's command line and OpenCV turn it (`_orientation`).
Every failure a user can cause (missing file, not a video, no frames, corrupt data, a region
outside the frame) raises VideoError with a message naming the file and the problem.

The parts: `_video_probe` (VideoInfo, the index), `_video_index` (VideoIndex), `_video_open` (opening a file, at a
keyframe), `_video_seek` (seeking, locating frames by timestamp), `_video_decode` (decoding past damaged data,
counting frames), `_bare_streams` (a camera's .h264 or .mjpeg dump: where its decoders can start).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import check_int
from ._orientation import AS_STORED, Orientation, orientation_of
from ._region import full_rgb, region_resized, region_rgb, resize_rgb
from ._video_decode import Lost, counted, decode_from_here, frame_seconds
from ._video_errors import SeekError, VideoError
from ._video_index import VideoIndex
from ._video_open import open_threaded, open_video, opened
from ._video_probe import VideoInfo, indexed, probed
from ._video_seek import SKIP_MORE_THAN, index_seconds, sought

__all__ = ["AS_STORED", "Orientation", "SeekError", "VideoError", "VideoFrame", "VideoIndex", "VideoInfo", "check_roi",
           "check_shown_roi", "crop_resize", "decoded_frames_at", "frame_seconds", "frames_at", "index_video",
           "iter_frames", "probe_and_index", "probe_video", "resize_region", "shown_orientation"]


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: its index in presentation order, its time in seconds and its pixels (H, W, 3) uint8
    RGB (only the region when one was asked for); None for a frame that does not decode (damaged data: only
    from iter_frames(undecodable=True))."""

    index: int
    time_s: float
    rgb: np.ndarray | None


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, size, frame rate and codec of the first video stream of `path`, without decoding it."""
    with open_video(path) as container:
        return probed(container)


def shown_orientation(path: str | Path) -> Orientation:
    """How the frames of `path` are shown (a phone's portrait video: turned; _orientation), from its first frame
    that decodes; as stored for a video with none. Its shown size is
    `shown_orientation(path).shown_size(info.width, info.height)` of its probe_video `info`."""
    with open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        first = next(decode_from_here(container, stream, tolerant=True), None)
        return AS_STORED if first is None else orientation_of(first)


def index_video(path: str | Path) -> VideoIndex:
    """`path`'s frames' timestamps and keyframes, from the container's own index where it lists them (an MP4's
    sample table: _video_probe.listed_index), else from a demux pass (no decoding: ~50k packets/s)."""
    with open_video(path) as container:
        return indexed(container, path)


def probe_and_index(path: str | Path) -> tuple[VideoInfo, VideoIndex]:
    """probe_video(path) and index_video(path) from one opening of the file: FFmpeg decodes an H.264 stream's first
    frame to learn its parameters when it opens it, which can cost more than the demux pass of a short clip."""
    with open_video(path) as container:
        return probed(container), indexed(container, path)


def iter_frames(path: str | Path, stride: int = 1, start: int = 0, *, stop: int | None = None,
                roi: tuple[int, int, int, int] | None = None, size: tuple[int, int] | None = None,
                index: VideoIndex | None = None, threads: int | None = None,
                regions: Sequence[tuple[int, int, int, int]] | None = None, undecodable: bool = False
                ) -> Iterator[VideoFrame]:
    """Yield every `stride`-th decoded frame of `path` (indices 0, stride, 2*stride, ...) as RGB uint8:
    (H, W, 3), or (h, w, 3) of region `roi` (x, y, w, h) alone, the rest of the frame never converted;
    with `size` (h, w) the region (default: the whole frame) resized to it in the same pass (h, w, 3),
    what models are fed (_region.region_resized). `regions` instead of `roi` (with `size`): several regions of
    each frame, each converted and resized alone, (R, h, w, 3): one decode for all of them.

    Output frames [start, stop) are yielded (frame indices start*stride, ...). Without `index` the decoder
    starts at frame 0 and passes through the skipped frames (decoded, not converted). With the `index` of
    a seekable video (or its window holding those frames, VideoIndex.window) it starts at the last keyframe
    before frame start*stride and locates frames by their timestamps, so a segment in the middle of a long
    video costs at most one group of pictures more, and with a stride it seeks ahead to the keyframe before each
    frame wanted where that skips frames (a sparse stride decodes only the groups of pictures it needs);
    SeekError when the decoded frames do not match the index (decode without it from where it stopped).
    `threads`: decoder threads (None: FFmpeg's automatic frame/slice threading; 1 where processes do the
    parallel work).

    `undecodable`, with the index of a seekable video (or its window): damaged data (e.g. a few bad bytes in a
    camera's recording) does not end the video. Frames are then always located by their timestamps; a packet that
    fails to decode is passed over, and each wanted frame of the index that the decoder does not give (its packet
    failed, or the decoder dropped it) between frames that decode is yielded with rgb None and its time from the
    index. Frames missing at the very end of the stream are not yielded (it ends there, as a cut file does).
    Without a seekable index frames can only be counted (counted): each packet that fails to decode counts as a
    frame yielded with rgb None in the place of the next frame decoded (with B-frames, that may be a frame or two
    from its own), so the frames after it keep their numbers, each with its own time; a frame the decoder drops
    without an error leaves the ones after it numbered one too low, their times still theirs (the job counts the
    frames whose time its rows jump over).

    Frames and regions are those of the frame as shown (a phone's portrait video is turned: _orientation), as its
    first frame decoded says; `size` is the shown size (h, w).

    Raises VideoError for a missing or non-video file, a video with no frames, data that fails
    to decode (a truncated file may first yield the frames before the damage), a region outside the frame as shown,
    or a frame whose size is not the stream's (a recording that switches resolution; the frames before it
    are yielded).
    """
    import av

    check_int("stride", stride, 1, error=VideoError)
    path = Path(path)
    first = start * stride
    end = None if stop is None else stop * stride - stride + 1  # frames >= end are not wanted
    seek = index is not None and index.seekable and (first > 0 or stride > 1 or undecodable)
    key = index.keyframe_at_or_before(first) if seek and index.offsets is not None else None  # a bare stream's
    with opened(path, index, key) as (container, idrs, first_pos):
        stream = container.streams.video[0]
        if threads is None:
            stream.thread_type = "AUTO"
        else:
            stream.thread_count = threads
        width, height = stream.codec_context.width, stream.codec_context.height
        if regions is not None and (roi is not None or size is None):
            raise ValueError("regions= takes a size and no roi")
        convert = None  # made for the first frame decoded, which says how frames are shown
        tolerant = undecodable and seek and key is None
        decoded = (counted(container, stream, undecodable, key or 0, idrs, first_pos) if not seek or key is not None
                   else sought(container, stream, index, first, path, stride, tolerant))
        index_no, want = -1, first  # the next frame wanted
        try:
            for index_no, frame in decoded:
                past = end is not None and index_no >= end
                if tolerant:
                    if index_no >= index.frames and not past:  # a frame the index does not hold
                        raise SeekError(f"{path}: decoded a frame after the last of its index ({index.frames} frames)")
                    for missing in range(want, index_no if end is None else min(index_no, end), stride):
                        yield VideoFrame(missing, index_seconds(index, missing, stream), None)  # did not decode
                        want = missing + stride
                if past:
                    return
                if index_no != want:  # between two frames wanted, or given already (a seek made again further back)
                    continue
                if isinstance(frame, Lost):
                    yield VideoFrame(index_no, frame.time_s, None)
                    want = index_no + stride
                    continue
                if (frame.width, frame.height) != (width, height) and width:  # a stream switching resolution midway
                    raise VideoError(f"{path}: the frame size changes from {width}x{height} to {frame.width}x"
                                     f"{frame.height} at frame {index_no}; a region means other pixels in each size: "
                                     "cut the video at that frame (e.g. with ffmpeg) or scale it to one size")
                convert = convert or _converter(frame, roi, size, regions)
                yield VideoFrame(index_no, frame_seconds(frame, index_no, stream), convert(frame))
                want = index_no + stride
        except av.FFmpegError as exc:
            raise VideoError(f"{path} is corrupt or truncated after frame {index_no} ({exc})") from None
        if index_no < 0 and not seek:  # after a seek: the stream ends before the frames asked for (a cut file)
            raise VideoError(f"{path} has no decodable frames")


def _converter(frame, roi: tuple[int, int, int, int] | None, size: tuple[int, int] | None,
               regions: Sequence[tuple[int, int, int, int]] | None) -> Callable[[Any], np.ndarray]:
    """iter_frames' conversion of each frame, for a stream whose first decoded frame is `frame`: its regions checked
    against the frame as shown (orientation_of: a phone's portrait video is shown turned), taken there."""
    turn = orientation_of(frame)
    if regions is not None:
        boxes = [check_shown_roi(r, frame.width, frame.height, turn) for r in regions]
        return partial(_regions_resized, boxes=boxes, size=size, orientation=turn)
    if roi is not None:
        roi = check_shown_roi(roi, frame.width, frame.height, turn)
    elif size is not None:
        roi = (0, 0, *turn.shown_size(frame.width, frame.height))
    return (partial(full_rgb, orientation=turn) if roi is None else
            partial(region_rgb, roi=roi, orientation=turn) if size is None else
            partial(region_resized, roi=roi, size=size, orientation=turn))


def _regions_resized(frame, boxes: list[tuple[int, int, int, int]], size: tuple[int, int],
                     orientation: Orientation) -> np.ndarray:
    if len(boxes) == 1:  # the usual job: no copy into a stack of one
        return region_resized(frame, boxes[0], size, orientation)[None]
    return np.stack([region_resized(frame, box, size, orientation) for box in boxes])


def frames_at(path: str | Path, indices: Iterable[int], index: VideoIndex | None = None) -> list[VideoFrame]:
    """The frames of `path` with the given decode-order indices, in index order, as RGB (H, W, 3); indices past
    the end, and frames that do not decode (damaged data), are absent. Only the requested frames are converted
    (see decoded_frames_at)."""
    return [VideoFrame(i, time_s, full_rgb(frame)) for i, time_s, frame in decoded_frames_at(path, indices, index)]


def decoded_frames_at(path: str | Path, indices: Iterable[int], index: VideoIndex | None = None
                      ) -> Iterator[tuple[int, float, Any]]:
    """(index, time in seconds, PyAV frame) of the frames of `path` with the given decode-order indices, in index
    order, one at a time (convert a frame before taking the next); indices past the end are absent, and so are
    frames that do not decode (damaged data: iter_frames' `undecodable`).

    None is converted. The decoder seeks to the keyframe before a wanted frame wherever that decodes fewer
    frames than going on from the frame wanted before it, so a dozen frames spread over a day-long recording
    (the report's thumbnails) cost a dozen groups of pictures, not the whole video. It finds the keyframes in
    `index` (the whole video's, e.g. the one a run kept) or else in a demux pass of its own. A video whose frames
    cannot be found by their timestamps (VideoIndex.by_timestamp: a bare stream, or not seekable), or where a seek
    misleads, is decoded from its first frame up to the last index, its frames counted as the job's decoders count
    them (_counted_run), so each has the number its row has. Raises VideoError as iter_frames does.
    """
    wanted = sorted(set(indices))
    if not wanted:
        return
    path = Path(path)
    index = index if index is not None else index_video(path)
    if not index.by_timestamp:
        yield from _counted_run(path, index, wanted)
        return
    runs = _seek_runs(wanted, index)
    given = -1  # the last frame given
    with open_threaded(path) as container:
        stream = container.streams.video[0]
        for n, frames in enumerate(runs):
            try:
                for decoded in _picked(sought(container, stream, index, frames[0], path, tolerant=True), frames,
                                       stream, path):
                    given = decoded[0]
                    yield decoded
            except SeekError:  # the rest decoded from the first frame, counted, in a container opened again
                yield from _counted_run(path, None, [f for later in runs[n:] for f in later if f > given])
                return


def _seek_runs(wanted: list[int], index: VideoIndex) -> list[list[int]]:
    """The sorted `wanted` frames in runs, each decoded after a seek for its first. A frame joins the run before it
    unless seeking to its keyframe skips more than SKIP_MORE_THAN frames after that run's last (the rule a
    stride's seeks ahead follow, sought)."""
    runs: list[list[int]] = []
    for frame in wanted:
        if runs and index.keyframe_at_or_before(min(frame, index.frames - 1)) - runs[-1][-1] <= SKIP_MORE_THAN:
            runs[-1].append(frame)
        else:
            runs.append([frame])
    return runs


def _counted_run(path: Path, index: VideoIndex | None, frames: list[int]) -> Iterator[tuple[int, float, Any]]:
    """decoded_frames_at's frames `frames` (sorted) of a video decoded from its first frame and counted as a job's
    decoder of it from frame 0 counts them (iter_frames: from its first keyframe's offset, each later one taking its
    number, where `index` has offsets; a packet that fails to decode counted as a frame that did not decode); from
    the file's start, without the keyframes' numbers, where `index` is None or the first keyframe does not decode
    whole."""
    key = 0 if index is not None and index.seekable and index.offsets is not None else None
    try:
        with opened(path, index, key) as (container, idrs, first_pos):
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            yield from _picked(counted(container, stream, True, 0, idrs, first_pos), frames, stream, path)
    except SeekError:  # its first keyframe is damaged (nothing was given yet: that is its first frame)
        yield from _counted_run(path, None, frames)


def _picked(decoded: Iterator[tuple[int, Any]], frames: list[int], stream, path: Path
            ) -> Iterator[tuple[int, float, Any]]:
    """(index, time in seconds, PyAV frame) of the frames numbered `frames` (sorted) among `decoded` (numbered
    frames of `stream`, in order, some of them Lost: they did not decode), up to the last of `frames`."""
    import av

    given = 0
    try:
        for at, frame in decoded:
            while frames[given] < at:  # it did not decode (damaged data)
                given += 1
                if given == len(frames):
                    return
            if at == frames[given]:
                if not isinstance(frame, Lost):
                    yield at, frame_seconds(frame, at, stream), frame
                given += 1
                if given == len(frames):
                    return
    except av.FFmpegError as exc:
        raise VideoError(f"{path} is corrupt or truncated ({exc})") from None


def check_roi(roi: tuple[int, int, int, int], width: int, height: int, shown: str = "") -> tuple[int, int, int, int]:
    """Validate a region (x, y, w, h) against a width x height frame; return it as ints or raise VideoError.
    `shown`: how the frame is shown, for the message (" shown rotated 90° clockwise (stored 768x576)")."""
    if len(roi) != 4:
        raise VideoError(f"a region is (x, y, w, h), got {roi!r}")
    x, y, w, h = (int(v) for v in roi)
    if w < 1 or h < 1:
        raise VideoError(f"region {roi} has an empty size")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise VideoError(f"region (x={x}, y={y}, w={w}, h={h}) is outside the {width}x{height} frame{shown}")
    return x, y, w, h


def check_shown_roi(roi: tuple[int, int, int, int], width: int, height: int, turn: Orientation
                    ) -> tuple[int, int, int, int]:
    """check_roi of a region of the frame as shown (`turn`) of a stored width x height frame; the message says how
    it is shown and stored."""
    return check_roi(roi, *turn.shown_size(width, height), turn.note(width, height))


def resize_region(region: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (h, w, 3) uint8 region to `size` (out_h, out_w): returns (3, out_h, out_w) uint8.

    Downscaling uses area averaging (OpenCV INTER_AREA), upscaling bilinear.
    """
    if region.ndim != 3 or region.shape[2] != 3:
        raise VideoError(f"a frame is (H, W, 3), got shape {region.shape}")
    return np.ascontiguousarray(resize_rgb(region, size).transpose(2, 0, 1), dtype=np.uint8)


def crop_resize(rgb: np.ndarray, roi: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Crop region (x, y, w, h) of an (H, W, 3) uint8 frame and resize it to `size` (h, w): returns (3, h, w) uint8."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise VideoError(f"a frame is (H, W, 3), got shape {rgb.shape}")
    x, y, w, h = check_roi(roi, rgb.shape[1], rgb.shape[0])
    return resize_region(rgb[y : y + h, x : x + w], size)
