"""Seeking to a keyframe and locating the frames decoded after it by their timestamps (VideoIndex)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ._video_decode import decode_from_here, seconds_per_frame
from ._video_errors import SeekError
from ._video_index import VideoIndex

# How far before a keyframe's timestamp a seek aims, in seconds, try after try: MPEG-TS's demuxer lands on the keyframe
# after the one asked for when the stream has B-frames (it compares decode timestamps), so the first try aims at
# the keyframe itself and the next ones further back; the frames from the landing to the keyframe are decoded
# in vain (no more than a few seconds' worth).
_SEEK_BACK_S = (0.0, 0.5, 2.0, 8.0)


# A seek ahead skips the frames between the last one decoded and the keyframe before the next one wanted; it is
# made only when it skips more than this many (a seek and the decoder's restart cost about a frame or two).
SKIP_MORE_THAN = 8


def index_seconds(index: VideoIndex, frame: int, stream) -> float:
    """The time in seconds of frame `frame` of `index` (or its window) that did not decode: its timestamp's, else
    frame / the stream's frame rate (nan without one), as frame_seconds gives a decoded frame's."""
    if index.time_base:
        return float(index.pts[frame - index.start] * index.time_base)
    return frame * seconds_per_frame(stream)


def sought(container, stream, index: VideoIndex, first: int, path: Path, stride: int = 1,
           tolerant: bool = False) -> Iterator[tuple[int, Any]]:
    """(frame number, PyAV frame) decoded after seeking for frame `first` of a seekable `index` (or its window
    holding it), each located by its timestamp. With `stride` > 1 (frames first, first + stride, ... wanted) it
    seeks ahead to the keyframe before the next frame wanted wherever that skips more than SKIP_MORE_THAN
    frames, so a sparse --stride over a long recording decodes the groups of pictures that hold its frames, not
    all of it. SeekError when the frames do not match the index (from_keyframe_before); `tolerant`: see there."""
    wanted = first
    while True:
        for at, frame in from_keyframe_before(container, stream, index, wanted, path, tolerant):
            yield at, frame
            if at >= wanted:
                wanted += stride * (1 + (at - wanted) // stride)  # the next one after `at`
                if stride > 1 and wanted < index.frames and index.keyframe_at_or_before(wanted) - at > SKIP_MORE_THAN:
                    break  # seek ahead to it
        else:
            return


def from_keyframe_before(container, stream, index: VideoIndex, frame: int, path: Path, tolerant: bool = False
                         ) -> Iterator[tuple[int, Any]]:
    """(frame number, PyAV frame) from a seek to the keyframe at or before `frame` (or from any frame before it),
    frames before a window's first left out. A seek that lands after `frame`, or gives no frame of the window
    before the stream ends (MPEG-TS with B-frames, sought into its last group of pictures, lands at its end), is
    made again from further back (_SEEK_BACK_S); SeekError when every try lands after it, or when the frames do
    not match the index.

    `tolerant` of damaged data: packets that fail to decode are passed over and frames of the index may be missing
    (they did not decode). A try must also start on a keyframe that decodes whole (not flagged corrupt, and no
    packet failing before it is found): a damaged one is concealed from the frames decoded before it, so its group
    of pictures would come out otherwise than when decoding through it, and a segment's frames would depend on
    where the job cut the video. On the last try the frames start wherever it landed (the ones before did not
    decode from any start tried)."""
    key = index.keyframe_at_or_before(frame)
    key_pts = int(index.pts[key - index.start])
    landed = None
    tries = _SEEK_BACK_S if index.time_base else _SEEK_BACK_S[:1]
    for n, back in enumerate(tries):
        seek_keyframe(container, stream, key_pts - round(back / index.time_base) if back else key_pts)
        previous, retry, failed = None, tolerant and n < len(tries) - 1, []
        starting = tolerant  # until the frame decoding starts from is found (an open GOP's leading frames before it)
        for decoded in decode_from_here(container, stream, tolerant, failed):
            at = located(index, decoded.pts, previous, path, gaps=tolerant)
            if at is None:  # before the window the index holds: not wanted
                continue
            if previous is None and at > frame and (retry or not tolerant):
                landed = at
                break  # landed after it: nothing given yet, seek again from further back
            if starting and ((on_key := index.is_keyframe(at)) or at >= key):
                starting = False
                if retry and (decoded.is_corrupt or failed or not on_key):
                    landed = at
                    break  # its keyframe is damaged: from further back
            previous = at
            yield at, decoded
        else:
            if previous is not None or n == len(tries) - 1:
                return  # the stream ends: after the frames given, or past `frame` from every start (a file cut short)
            landed = "the end"  # nothing from there to the end: MPEG-TS with B-frames, sought into its last group
    raise SeekError(f"{path}: seeking for frame {frame} landed on frame {landed}")


def seek_keyframe(container, stream, pts: int) -> None:
    """Seek `stream` to the keyframe at or before timestamp `pts`; where the container refuses (an AVI asked for a
    time before its start), to its start."""
    import av

    try:
        container.seek(pts, stream=stream, backward=True, any_frame=False)
    except av.FFmpegError:
        container.seek(0)


def located(index: VideoIndex, pts: int | None, previous: int | None, path: Path, gaps: bool = False) -> int | None:
    """The index of the frame with timestamp `pts`, checked to follow `previous` (no frame skipped); None for a
    frame before the index's or window's first (VideoIndex.window; the undecodable frames before a capture's first
    keyframe, _from_first_keyframe) while none was located yet. With `gaps` (past damaged data):
    any frame after `previous` (the ones between did not decode), a frame past the last of the index or window is
    index.frames (where the window ends), and once a frame was located, one that damaged data put out of place
    (no timestamp, one the index does not hold, or one not after `previous`) is None: passed over."""
    if previous is not None and 0 <= previous + 1 - index.start < len(index.pts) and \
            index.pts[previous + 1 - index.start] == pts:
        return previous + 1  # the next frame, as almost every frame is: no search
    if previous is None and pts is not None and pts < index.pts[0]:
        return None
    if gaps and pts is not None and pts > index.pts[-1]:
        return index.frames
    at = int(np.searchsorted(index.pts, pts)) if pts is not None else len(index.pts)
    found = at < len(index.pts) and index.pts[at] == pts
    if gaps and previous is not None and not (found and index.start + at > previous):
        return None
    if not found or (previous is not None and not gaps and index.start + at != previous + 1):
        raise SeekError(f"{path}: decoded frame with timestamp {pts} does not follow frame {previous} of the index")
    return index.start + at
