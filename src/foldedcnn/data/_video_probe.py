"""What a video file holds, read without decoding it (or decoding a few frames): its stream's description
(VideoInfo) and its index (VideoIndex), from the container's own index or a demux pass, seekable only where seeks
land on the frames their timestamps name."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ._bare_streams import IDR_TYPES, holds_timestamps, is_idr, starts_counting
from ._video_decode import DECODE_ORDER_STAMPED, decode_from_here, seconds_per_frame
from ._video_errors import SeekError, VideoError
from ._video_index import VideoIndex
from ._video_seek import from_keyframe_before


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: frame count (None when it does not say), size in pixels, frame rate, codec, the
    container format (FFmpeg's demuxer name: "mov,mp4,m4a,3gp,3g2,mj2", "mpegts", "h264" for a bare stream), and
    the video stream's length in seconds where the container declares it and no frame count (Matroska and WebM
    files carry it in a DURATION tag once their writer closes them; None otherwise)."""

    frames: int | None
    width: int
    height: int
    fps: float
    codec: str = ""
    container: str = ""
    seconds: float | None = None


def probed(container) -> VideoInfo:
    """The VideoInfo of an open container's first video stream."""
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    frames = int(stream.frames) - _trimmed(stream) or None
    return VideoInfo(
        frames=frames,
        width=int(stream.codec_context.width),
        height=int(stream.codec_context.height),
        fps=float(rate) if rate else 0.0,
        codec=stream.codec_context.name,
        container=container.format.name,
        seconds=None if frames else _declared_seconds(stream),
    )


def _declared_seconds(stream) -> float | None:
    """The length a Matroska or WebM writer declares for `stream` when it closes the file (its DURATION tag,
    "HH:MM:SS.nnnnnnnnn": up to the end of its last frame), in seconds; None without one (a recording cut off
    before its writer closed it has none)."""
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    try:
        hours, minutes, seconds = tag.split(":")
        declared = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (AttributeError, ValueError):
        return None
    return declared if declared > 0 else None


# Packets demuxed to check that a container's own index lists frames as they come (listed_index), and the bits of
# an index entry's flags (libavformat's AVINDEX_KEYFRAME, AVINDEX_DISCARD_FRAME).
_LISTED_CHECKED = 300
_AVINDEX_KEYFRAME, _AVINDEX_DISCARD_FRAME = 1, 2
# Entries at each end of a container's index looked at for frames it trims (_trimmed): more than a group of pictures
_TRIM_CHECKED = 1000


def _trimmed(stream) -> int:
    """Frames the container lists (and declares) but marks to be decoded and never shown, among the first and last
    _TRIM_CHECKED entries of its index: an MP4 whose edit list trims its start (a clip cut with `ffmpeg -ss ... -c
    copy` keeps the frames from the keyframe before the cut) or its end. 0 for a container without an index."""
    entries = stream.index_entries
    n = len(entries)
    ends = range(n) if n <= 2 * _TRIM_CHECKED else itertools.chain(range(_TRIM_CHECKED), range(n - _TRIM_CHECKED, n))
    return sum(1 for i in ends if entries[i].flags & _AVINDEX_DISCARD_FRAME)


def indexed(container, path: str | Path) -> VideoIndex:
    """The video's index: the container's own when it lists every frame in presentation order (listed_index), else
    from a demux pass over every packet; not seekable where its timestamps do not locate the frames decoded
    (_located_by_stamps). A bare stream's frames are counted (_bare_index)."""
    stream = container.streams.video[0]
    listed = len(stream.index_entries)  # as the file holds it: a demux pass adds the packets it reads past its end
    index = listed_index(container, stream) or demuxed_index(container, stream, path)
    if container.format.name in DECODE_ORDER_STAMPED and not len(index.pts) == stream.frames == listed:
        return _unseekable(index)  # chunks lost (damaged, cut off) or an index that lost entries: seeks land elsewhere
    return _located_by_stamps(container, stream, _from_first_keyframe(index), Path(path))


def _unseekable(index: VideoIndex) -> VideoIndex:
    """`index`'s timestamps with no keyframe: not seekable, so one decoder counts the frames from the first."""
    return VideoIndex(index.pts, index.keyframes[:0], index.time_base)


def _from_first_keyframe(index: VideoIndex) -> VideoIndex:
    """`index` from its first keyframe on: the frames before it (a capture started in the middle of a group of
    pictures, as live MPEG-TS recordings are) cannot be decoded, their references being before the file's start,
    and decoders give none of them (or leave them out when located by timestamp). They are no frames of the video,
    and the rest can be sought: without this, such a recording was not seekable, and one decoder took it all."""
    if not len(index.keyframes) or index.keyframes[0] == 0 or not np.all(np.diff(index.pts) > 0):
        return index
    first = int(index.keyframes[0])
    pts = index.pts[first:] if index.offsets is None else index.pts[first:] - first  # a bare stream's: frame numbers
    return VideoIndex(pts, index.keyframes - first, index.time_base, offsets=index.offsets)


# Containers whose frames, with B-frames, the decoder does not give with the timestamps a demux pass from the start
# finds, and how that is told. AVI carries counters in decode order for timestamps (FFmpeg gives them as such), so
# reordered frames come out with counters out of order: the first _ORDER_CHECKED frames are decoded (MPEG-4 with
# packed B-frames comes out in order); and its counters locate frames only while every chunk the file declares is
# read and listed in its index (idx1), by which it seeks (indexed). MPEG-PS's seeks by byte position can land on
# frames with shifted timestamps (MPEG-2 with B-frames): a segment's decoder must find its first frames after a seek
# to each of _SEEKS_CHECKED keyframes spread over the video.
_ORDER_CHECKED = 32
_SEEK_STAMPED = frozenset({"mpeg"})
_SEEKS_CHECKED = 3


def _located_by_stamps(container, stream, index: VideoIndex, path: Path) -> VideoIndex:
    """`index`, or, where the frames decoded do not carry its timestamps (H.264 with B-frames in AVI; MPEG-2 with
    B-frames in MPEG-PS, after a seek), the same timestamps with no keyframe: not seekable, so one decoder counts
    frames from the first instead of locating them (which would take every reordered frame for a lost one, or
    fail every segment's seek and decode from frame 0). An AVI whose keyframes are all IDR pictures keeps them
    with their offsets (demuxed_index): its decoders seek to one by its counter and count from it."""
    import av

    fmt = container.format.name
    if fmt not in DECODE_ORDER_STAMPED | _SEEK_STAMPED or not stream.codec_context.has_b_frames or not index.seekable:
        return index
    try:
        if fmt in _SEEK_STAMPED:
            return index if _seeks_locate_frames(container, stream, index, path) else _unseekable(index)
        if _stamps_in_order(container, stream, index):
            return replace(index, offsets=None)  # located by its stamps
    except av.FFmpegError:  # damaged beyond telling: frames are counted, which damaged data does not stop
        return _unseekable(index)
    return index if index.offsets is not None else _unseekable(index)  # counted from its IDR pictures, or all


def _stamps_in_order(container, stream, index: VideoIndex) -> bool:
    """Whether the first _ORDER_CHECKED frames decoded carry timestamps of the index, in order (packets among them
    that fail to decode passed over: damaged data there does not hide frames out of order)."""
    container.seek(0)
    frames = decode_from_here(container, stream, tolerant=True)
    stamps = [frame.pts for frame in itertools.islice(frames, _ORDER_CHECKED)]
    if None in stamps:
        return False
    return bool(np.all(np.diff(stamps) > 0)) and bool(np.isin(stamps, index.pts[:2 * _ORDER_CHECKED]).all())


def _seeks_locate_frames(container, stream, index: VideoIndex, path: Path) -> bool:
    """Whether a decoder of a segment starting at each of _SEEKS_CHECKED keyframes spread over the video (holding
    the window of the index a job's decoder is sent) finds its first frames by their timestamps."""
    spread = index.keyframes[np.linspace(0, len(index.keyframes) - 1, _SEEKS_CHECKED + 2).round().astype(int)[1:-1]]
    for key in dict.fromkeys(int(k) for k in spread if k > 0):
        try:
            list(itertools.islice(from_keyframe_before(container, stream, index.window(key, key + 4), key, path), 4))
        except SeekError:
            return False
    return True


def listed_index(container, stream) -> VideoIndex | None:
    """The index an MP4's or MOV's sample table (or an AVI's idx1) holds, which opening the file read: a day-long
    recording's frames are not read a second time just to find their timestamps (the demux pass reads every
    byte). Taken only when it lists as many frames as the container declares, none to be discarded, timestamps
    strictly increasing, and its first _LISTED_CHECKED entries are the timestamps and keyframe flags of the first
    packets demuxed (a stream with B-frames is listed in decode order: its packets say otherwise, and it is
    demuxed). None otherwise."""
    entries = stream.index_entries
    n = len(entries)
    if n == 0 or n != stream.frames:
        return None
    listed = np.fromiter(((e.timestamp, e.flags) for e in entries), [("pts", np.int64), ("flags", np.int32)], n)
    pts, key = np.ascontiguousarray(listed["pts"]), (listed["flags"] & _AVINDEX_KEYFRAME).astype(bool)
    if np.any(listed["flags"] & _AVINDEX_DISCARD_FRAME) or not np.all(np.diff(pts) > 0):
        return None
    first = [(p.pts, p.is_keyframe) for p in itertools.islice(
        (p for p in container.demux(stream) if p.size and p.pts is not None), min(n, _LISTED_CHECKED))]
    if first != list(zip(pts[:len(first)].tolist(), key[:len(first)].tolist(), strict=True)):
        container.seek(0)  # the demux pass starts from the first packet again
        return None
    return VideoIndex(pts, np.nonzero(key)[0].astype(np.int64), float(stream.time_base or 0.0))


def demuxed_index(container, stream, path: str | Path) -> VideoIndex:
    """The index from a demux pass over every packet of `stream` (no decoding: ~50k packets/s); VideoError for a
    file that is corrupt or cut short. Packets marked to be decoded and never shown (an edit list's trimmed start)
    are no frames of it; when a keyframe is among those before its first frame, a decoder seeking to that frame
    lands on the keyframe and shows it first: it counts as one. A bare stream's index is _bare_index's."""
    import av

    if not holds_timestamps(container):
        return _bare_index(container, stream, path)
    pts, key = [], []
    hidden_key = None  # the timestamp of the last keyframe marked not to be shown
    time_base = float(stream.time_base or 0.0)
    codec = stream.codec_context.name
    # an AVI's stamps are decode-order counters: with IDR pictures for keyframes its frames can be counted from them
    counters = container.format.name in DECODE_ORDER_STAMPED and codec in IDR_TYPES and \
        stream.codec_context.has_b_frames
    places: list[int | None] = []  # its keyframes' positions in decode order (= counter order)
    try:
        for packet in container.demux(stream):
            if packet.size and packet.pts is not None:
                if packet.is_discard:
                    hidden_key = packet.pts if packet.is_keyframe else hidden_key
                    continue
                pts.append(packet.pts)
                key.append(packet.is_keyframe)
                if counters and packet.is_keyframe:  # where an AVI's keyframe is, None unless an IDR picture
                    places.append(packet.pos if is_idr(bytes(packet), codec) else None)
    except av.FFmpegError as exc:
        raise VideoError(f"{path} is corrupt or truncated after packet {len(pts)} ({exc})") from None
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    sorted_pts = np.asarray(pts, dtype=np.int64)[order]
    shown_key = np.asarray(key, dtype=bool)[order]
    if hidden_key is not None and len(sorted_pts) and hidden_key < sorted_pts[0]:
        shown_key[0] = True
    offsets = np.array(places, dtype=np.int64) if counters and places and None not in places and np.array_equal(
        order, np.arange(len(order))) else None  # counters in order: keyframe k is the k-th packet
    return VideoIndex(sorted_pts, np.nonzero(shown_key)[0].astype(np.int64), time_base, offsets=offsets)


def _bare_index(container, stream, path: str | Path) -> VideoIndex:
    """The index of a bare stream (a camera's .h264 or .mjpeg dump: no timestamps of its own, whatever its parser
    makes up) from a demux pass: its packets numbered (one frame each; pts: those numbers, time_base: one frame's
    seconds), for keyframes the packets a decoder can start from and count on (starts_counting) and their byte
    offsets (VideoIndex.offsets). With none (MPEG-4 Part 2 with B-frames, H.263, ...), it is not seekable: one
    decoder counts its frames from the first."""
    import av

    context = stream.codec_context
    codec, intra_only, b_frames = context.codec.canonical_name, context.codec.intra_only, context.has_b_frames
    starts: list[tuple[int, int]] = []  # (packet number, byte offset)
    count = 0
    try:
        for packet in container.demux(stream):
            if not packet.size:
                continue
            if packet.is_keyframe and packet.pos is not None and starts_counting(
                    b"" if intra_only else bytes(packet), codec, intra_only, b_frames):  # any JPEG starts: not copied
                starts.append((count, packet.pos))
            count += 1
    except av.FFmpegError as exc:
        raise VideoError(f"{path} is corrupt or truncated after packet {count} ({exc})") from None
    keys = np.array(starts, dtype=np.int64).reshape(-1, 2)
    step = seconds_per_frame(stream)
    return VideoIndex(np.arange(count, dtype=np.int64), keys[:, 0].copy(), 0.0 if np.isnan(step) else step,
                      offsets=keys[:, 1].copy())
