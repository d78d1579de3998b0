"""Video primitives: probe and index a file, decode its frames (PyAV), crop a region of interest.

Frames come out as RGB uint8 (H, W, 3). Given a region, only the region is converted (see `_region`):
exactly the full frame's pixels, or, given a size too, resized in the same pass (what models are fed).
Every failure a user can cause (missing file, not a video, no frames, corrupt data, a region
outside the frame) raises VideoError with a message naming the file and the problem.
"""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FoldedCNNError, check_int
from ..fsio import atomic_path
from ._region import full_rgb, region_resized, region_rgb, resize_rgb


class VideoError(FoldedCNNError):
    """A video that cannot be read, or a region that does not fit its frames."""


class SeekError(VideoError):
    """Frames found after a seek do not match the demuxed index; decoding from the start still works."""


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


@dataclass(frozen=True)
class VideoIndex:
    """What a demux pass (no decoding) finds: every frame's timestamp in presentation order (N,) and the
    indices of the frames a decoder can start from (keyframes). `seekable` when frames can be located
    by timestamp: every packet has one, no two share one, and frame 0 is a keyframe. A window of it
    (`window`: what a decoder of one segment reads) holds frames start .. start + N - 1.

    A bare H.264/HEVC stream (a camera's .h264 dump) has no timestamps: its index numbers the frames (pts: their
    numbers, time_base: one frame's seconds), its keyframes are its IDR pictures, and `offsets` says where each
    starts in the file. A decoder of a segment reads from the keyframe's offset and counts frames from its number
    (an IDR picture starts a closed group of pictures: the frames from it on in the file are the frames from its
    number on in display order). So does an AVI with B-frames whose keyframes are IDR pictures (its timestamps,
    decode-order counters, do not locate the frames decoded): its decoders seek to a keyframe by its counter, check
    the offset, and count."""

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
        """Write the index to `path` as a NumPy .npz of plain arrays (pts, keyframes, time_base), atomically; a
        whole index (start 0), not a window."""
        if self.start:
            raise ValueError("a window of an index is not saved: save the index it was cut from")
        bare = {} if self.offsets is None else {"offsets": self.offsets}
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, pts=self.pts, keyframes=self.keyframes, time_base=np.float64(self.time_base), **bare)

    @classmethod
    def load(cls, path: Path) -> VideoIndex:
        """An index written by `save` (never unpickled); VideoError when `path` is not one."""
        try:
            with np.load(path, allow_pickle=False) as z:
                pts, keyframes, time_base = z["pts"], z["keyframes"], z["time_base"]
                offsets = z["offsets"] if "offsets" in z.files else None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise VideoError(f"{path} is not a saved video index ({exc})") from None
        if not (pts.ndim == keyframes.ndim == 1 and time_base.ndim == 0 and pts.dtype == keyframes.dtype == np.int64
                and time_base.dtype == np.float64) or (offsets is not None and (
                    offsets.dtype != np.int64 or offsets.shape != keyframes.shape)):
            raise VideoError(f"{path} is not a saved video index (arrays of other shapes or types)")
        return cls(pts, keyframes, float(time_base), offsets=offsets)


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: its index in presentation order, its time in seconds and its pixels (H, W, 3) uint8
    RGB (only the region when one was asked for); None for a frame that does not decode (damaged data: only
    from iter_frames(undecodable=True))."""

    index: int
    time_s: float
    rgb: np.ndarray | None


@contextmanager
def _opened(path: Path, index: VideoIndex | None, key: int | None
            ) -> Iterator[tuple[Any, dict[int, int] | None, int | None]]:
    """`path` opened (_open); given `key`, a keyframe of `index` (one with offsets), ready to decode from it: a bare
    stream read from its offset (_open_at), an AVI sought to it by its counter. With that, _counted's `idrs` (the
    byte position, as the container reads it, of each IDR picture's packet from there on, and its frame number)
    and the position its first packet must have (None for a bare stream, read from exactly there)."""
    with _open(path) as container:
        if key is None:
            yield container, None, None
            return
        at = int(np.searchsorted(index.keyframes, key))
        offsets, numbers = index.offsets[at:].tolist(), index.keyframes[at:].tolist()
        stream = container.streams.video[0]
        if container.format.name not in _BARE_FORMATS:
            _seek(container, stream, int(index.pts[key - index.start]))
            yield container, dict(zip(offsets, numbers, strict=True)), offsets[0]
            return
        headers, fmt = bytes(stream.codec_context.extradata or b""), container.format.name
    with _open_at(path, offsets[0], headers, fmt) as container:
        base = offsets[0] - len(headers)  # the file position of what the container reads as position 0
        yield container, {o - base: k for o, k in zip(offsets, numbers, strict=True)}, None


class _FromOffset(io.RawIOBase):
    """A bare stream's file read from byte `offset` on, after `headers` (its parameter sets: a decoder starting at
    a keyframe needs them, and a camera may send them only once, at the start)."""

    def __init__(self, path: Path, offset: int, headers: bytes) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed with this reader
        self._file.seek(offset)
        self._headers = memoryview(headers)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._headers:
            n = min(len(buffer), len(self._headers))
            buffer[:n] = self._headers[:n]
            self._headers = self._headers[n:]
            return n
        return self._file.readinto(buffer)

    def close(self) -> None:
        self._file.close()
        super().close()


@contextmanager
def _open_at(path: Path, offset: int, headers: bytes, fmt: str) -> Iterator[Any]:
    """The bare stream at `path` (demuxer `fmt`) opened to be read from byte `offset` (a keyframe's:
    VideoIndex.offsets), its parameter sets `headers` (the stream's extradata) read first."""
    import av

    with io.BufferedReader(_FromOffset(path, offset, headers)) as reader:
        try:
            container = av.open(reader, format=fmt)
        except av.FFmpegError as exc:
            raise VideoError(f"cannot read {path} from byte {offset} ({exc})") from None
        with container:
            yield container


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
        return _probed(container)


def index_video(path: str | Path) -> VideoIndex:
    """`path`'s frames' timestamps and keyframes, from the container's own index where it lists them (an MP4's
    sample table: _listed_index), else from a demux pass (no decoding: ~50k packets/s)."""
    with _open(path) as container:
        return _indexed(container, path)


def probe_and_index(path: str | Path) -> tuple[VideoInfo, VideoIndex]:
    """probe_video(path) and index_video(path) from one opening of the file: FFmpeg decodes an H.264 stream's first
    frame to learn its parameters when it opens it, which can cost more than the demux pass of a short clip."""
    with _open(path) as container:
        return _probed(container), _indexed(container, path)


def _probed(container) -> VideoInfo:
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


# Packets demuxed to check that a container's own index lists frames as they come (_listed_index), and the bits of
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


def _indexed(container, path: str | Path) -> VideoIndex:
    """The video's index: the container's own when it lists every frame in presentation order (_listed_index), else
    from a demux pass over every packet; not seekable where its timestamps do not locate the frames decoded
    (_located_by_stamps)."""
    stream = container.streams.video[0]
    listed = len(stream.index_entries)  # as the file holds it: a demux pass adds the packets it reads past its end
    index = _listed_index(container, stream) or _demuxed_index(container, stream, path)
    if container.format.name in _DECODE_ORDER_STAMPED and not len(index.pts) == stream.frames == listed:
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
# read and listed in its index (idx1), by which it seeks (_indexed). MPEG-PS's seeks by byte position can land on
# frames with shifted timestamps (MPEG-2 with B-frames): a segment's decoder must find its first frames after a seek
# to each of _SEEKS_CHECKED keyframes spread over the video.
_DECODE_ORDER_STAMPED = frozenset({"avi"})
_ORDER_CHECKED = 32
_SEEK_STAMPED = frozenset({"mpeg"})
_SEEKS_CHECKED = 3


def _located_by_stamps(container, stream, index: VideoIndex, path: Path) -> VideoIndex:
    """`index`, or, where the frames decoded do not carry its timestamps (H.264 with B-frames in AVI; MPEG-2 with
    B-frames in MPEG-PS, after a seek), the same timestamps with no keyframe: not seekable, so one decoder counts
    frames from the first instead of locating them (which would take every reordered frame for a lost one, or
    fail every segment's seek and decode from frame 0). An AVI whose keyframes are all IDR pictures keeps them
    with their offsets (_demuxed_index): its decoders seek to one by its counter and count from it."""
    import av

    fmt = container.format.name
    if fmt not in _DECODE_ORDER_STAMPED | _SEEK_STAMPED or not stream.codec_context.has_b_frames or not index.seekable:
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
    stamps = [frame.pts for frame in itertools.islice(_decoded(container, stream, tolerant=True), _ORDER_CHECKED)]
    if None in stamps:
        return False
    return bool(np.all(np.diff(stamps) > 0)) and bool(np.isin(stamps, index.pts[:2 * _ORDER_CHECKED]).all())


def _seeks_locate_frames(container, stream, index: VideoIndex, path: Path) -> bool:
    """Whether a decoder of a segment starting at each of _SEEKS_CHECKED keyframes spread over the video (holding
    the window of the index a job's decoder is sent) finds its first frames by their timestamps."""
    spread = index.keyframes[np.linspace(0, len(index.keyframes) - 1, _SEEKS_CHECKED + 2).round().astype(int)[1:-1]]
    for key in dict.fromkeys(int(k) for k in spread if k > 0):
        try:
            list(itertools.islice(_from_keyframe_before(container, stream, index.window(key, key + 4), key, path), 4))
        except SeekError:
            return False
    return True


def _listed_index(container, stream) -> VideoIndex | None:
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


def _demuxed_index(container, stream, path: str | Path) -> VideoIndex:
    """The index from a demux pass over every packet of `stream` (no decoding: ~50k packets/s); VideoError for a
    file that is corrupt or cut short. Packets marked to be decoded and never shown (an edit list's trimmed start)
    are no frames of it; when a keyframe is among those before its first frame, a decoder seeking to that frame
    lands on the keyframe and shows it first: it counts as one. A bare H.264/HEVC stream (no packet has a
    timestamp) gets its frames numbered, its IDR pictures for keyframes and their byte offsets (VideoIndex)."""
    import av

    pts, key = [], []
    hidden_key = None  # the timestamp of the last keyframe marked not to be shown
    time_base = float(stream.time_base or 0.0)
    codec = stream.codec_context.name
    # an AVI's stamps are decode-order counters: with IDR pictures for keyframes its frames can be counted from them
    counters = container.format.name in _DECODE_ORDER_STAMPED and codec in _IDR_TYPES and \
        stream.codec_context.has_b_frames
    places: list[int | None] = []  # its keyframes' positions in decode order (= counter order)
    bare: list[tuple[int, int]] = []  # a stream without timestamps: (packet number, offset) of its IDR pictures
    count = 0  # its packets
    try:
        for packet in container.demux(stream):
            if packet.size and packet.pts is not None:
                if packet.is_discard:
                    hidden_key = packet.pts if packet.is_keyframe else hidden_key
                    continue
                pts.append(packet.pts)
                key.append(packet.is_keyframe)
                if counters and packet.is_keyframe:  # where an AVI's keyframe is, None unless an IDR picture
                    places.append(packet.pos if _is_idr(bytes(packet), codec) else None)
            elif packet.size and codec in _IDR_TYPES:
                if packet.is_keyframe and packet.pos is not None and _is_idr(bytes(packet), codec):
                    bare.append((count, packet.pos))
                count += 1
    except av.FFmpegError as exc:
        raise VideoError(f"{path} is corrupt or truncated after packet {len(pts) or count} ({exc})") from None
    if count and not pts:
        keys = np.array(bare, dtype=np.int64).reshape(-1, 2)
        step = _seconds_per_frame(stream)
        return VideoIndex(np.arange(count, dtype=np.int64), keys[:, 0].copy(), 0.0 if np.isnan(step) else step,
                          offsets=keys[:, 1].copy())
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    sorted_pts = np.asarray(pts, dtype=np.int64)[order]
    shown_key = np.asarray(key, dtype=bool)[order]
    if hidden_key is not None and len(sorted_pts) and hidden_key < sorted_pts[0]:
        shown_key[0] = True
    offsets = np.array(places, dtype=np.int64) if counters and places and None not in places and np.array_equal(
        order, np.arange(len(order))) else None  # counters in order: keyframe k is the k-th packet
    return VideoIndex(sorted_pts, np.nonzero(shown_key)[0].astype(np.int64), time_base, offsets=offsets)


# Per codec of a bare stream (no container: a camera's .h264 dump): how a NAL unit's type is read from the byte after
# its start code, the types of picture slices, and those of an IDR picture, which starts a closed group of pictures
# (HEVC's CRA and H.264's recovery points, which FFmpeg also calls keyframes, have leading pictures that a decoder
# starting there drops)
_BARE_FORMATS = frozenset({"h264", "hevc"})  # the demuxers of bare H.264 and HEVC streams
_IDR_TYPES = {"h264": (lambda byte: byte & 0x1F, range(1, 6), frozenset({5})),
              "hevc": (lambda byte: (byte >> 1) & 0x3F, range(0, 32), frozenset({19, 20}))}


def _is_idr(data: bytes, codec: str) -> bool:
    """Whether the first picture slice of `data`, an Annex B access unit of `codec` (NAL units after 00 00 01 start
    codes: parameter sets, SEI and delimiters before the slices), is an IDR picture's."""
    nal_type, slices, idr = _IDR_TYPES[codec]
    at = data.find(b"\x00\x00\x01")
    while 0 <= at < len(data) - 3:
        if (kind := nal_type(data[at + 3])) in slices:
            return kind in idr
        at = data.find(b"\x00\x00\x01", at + 3)
    return False


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
    Without a seekable index frames can only be counted (_counted): each packet that fails to decode counts as a
    frame yielded with rgb None in the place of the next frame decoded (with B-frames, that may be a frame or two
    from its own), so the frames after it keep their numbers, each with its own time; a frame the decoder drops
    without an error leaves the ones after it numbered one too low, their times still theirs (the job counts the
    frames whose time its rows jump over).

    Raises VideoError for a missing or non-video file, a video with no frames, data that fails
    to decode (a truncated file may first yield the frames before the damage), a region outside the frame,
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
    with _opened(path, index, key) as (container, idrs, first_pos):
        stream = container.streams.video[0]
        if threads is None:
            stream.thread_type = "AUTO"
        else:
            stream.thread_count = threads
        width, height = stream.codec_context.width, stream.codec_context.height
        if regions is not None:
            if roi is not None or size is None:
                raise ValueError("regions= takes a size and no roi")
            boxes = [check_roi(r, width, height) for r in regions]
            convert = partial(_regions_resized, boxes=boxes, size=size)
        else:
            if roi is not None:
                roi = check_roi(roi, width, height)
            elif size is not None:
                roi = (0, 0, width, height)
            convert = (full_rgb if roi is None else partial(region_rgb, roi=roi) if size is None
                       else partial(region_resized, roi=roi, size=size))
        tolerant = undecodable and seek and key is None
        decoded = (_counted(container, stream, undecodable, key or 0, idrs, first_pos) if not seek or key is not None
                   else _sought(container, stream, index, first, path, stride, tolerant))
        index_no, want = -1, first  # the next frame wanted
        try:
            for index_no, frame in decoded:
                past = end is not None and index_no >= end
                if tolerant:
                    if index_no >= index.frames and not past:  # a frame the index does not hold
                        raise SeekError(f"{path}: decoded a frame after the last of its index ({index.frames} frames)")
                    for missing in range(want, index_no if end is None else min(index_no, end), stride):
                        yield VideoFrame(missing, _index_seconds(index, missing, stream), None)  # did not decode
                        want = missing + stride
                if past:
                    return
                if index_no != want:  # between two frames wanted, or given already (a seek made again further back)
                    continue
                if isinstance(frame, _Lost):
                    yield VideoFrame(index_no, frame.time_s, None)
                    want = index_no + stride
                    continue
                if (frame.width, frame.height) != (width, height) and width:  # a stream switching resolution midway
                    raise VideoError(f"{path}: the frame size changes from {width}x{height} to {frame.width}x"
                                     f"{frame.height} at frame {index_no}; a region means other pixels in each size: "
                                     "cut the video at that frame (e.g. with ffmpeg) or scale it to one size")
                yield VideoFrame(index_no, frame_seconds(frame, index_no, stream), convert(frame))
                want = index_no + stride
        except av.FFmpegError as exc:
            raise VideoError(f"{path} is corrupt or truncated after frame {index_no} ({exc})") from None
        if index_no < 0 and not seek:  # after a seek: the stream ends before the frames asked for (a cut file)
            raise VideoError(f"{path} has no decodable frames")


# How far before a keyframe's timestamp a seek aims, in seconds, try after try: MPEG-TS's demuxer lands on the keyframe
# after the one asked for when the stream has B-frames (it compares decode timestamps), so the first try aims at
# the keyframe itself and the next ones further back; the frames from the landing to the keyframe are decoded
# in vain (no more than a few seconds' worth).
_SEEK_BACK_S = (0.0, 0.5, 2.0, 8.0)


# A seek ahead skips the frames between the last one decoded and the keyframe before the next one wanted; it is
# made only when it skips more than this many (a seek and the decoder's restart cost about a frame or two).
_SKIP_MORE_THAN = 8


def _decoded(container, stream, tolerant: bool = False, failed: list | None = None, fed: list | None = None
             ) -> Iterator[Any]:
    """The frames of `stream` decoded from where the container stands, packet by packet (container.decode's own
    loop): a packet that fails to decode raises av.FFmpegError (InvalidDataError mostly), or, `tolerant`, is passed
    over (and noted in `failed`, when given); `fed`, when given, gets each packet's byte position as it goes to the
    decoder (before the frames that follow it). Tolerant, the first keyframe after damaged data (a packet that failed,
    or a frame the decoder flags corrupt) goes to a new decoder, once the old one has given the frames it holds: what
    the old one made of the damage (an MPEG-4 header it misread) would carry into that keyframe's group of pictures,
    which a decoder starting there (a segment's, after its seek) never sees."""
    import av

    decoder, damaged = stream.codec_context, False
    for packet in container.demux(stream):
        if fed is not None:
            fed.append(packet.pos)
        frames = []
        if damaged and packet.is_keyframe:
            frames = decoder.decode(None)  # the frames it holds
            decoder, damaged = _new_decoder(stream), False
        try:
            frames += decoder.decode(packet)
        except av.FFmpegError:  # InvalidDataError mostly; H.263's decoder gives EPERM for a damaged picture header
            if not tolerant:
                raise
            if failed is not None:
                failed.append(packet.pts)
            damaged = True
        for frame in frames:
            damaged = damaged or (tolerant and frame.is_corrupt)
            if frame.time_base is None:  # held until the end, or from a new decoder: the stream's time base
                frame.time_base = stream.time_base
            yield frame


@dataclass(frozen=True)
class _Lost:
    """A frame counted in the place of a packet that failed to decode (_counted), and the time given it."""

    time_s: float


def _counted(container, stream, tolerant: bool = False, first: int = 0, idrs: dict[int, int] | None = None,
             first_pos: int | None = None) -> Iterator[tuple[int, Any]]:
    """(frame number, PyAV frame) counted from `first`, the number of the stream's first frame where the container
    stands (a bare stream read from a keyframe: _open_at), for a video whose frames cannot be located by their
    timestamps. `tolerant`: a packet that fails to decode is passed over (_decoded) and counted as a frame
    that did not decode (_Lost) in the place of the next frame decoded, since a packet holds one frame: the frames
    after it keep their numbers. Its time is a frame's duration after the frame before it (before the frame after
    it, at the start). Packets that fail after the last frame are not counted (a file cut short ends in a part of
    a packet). `idrs` (a bare stream's or an AVI's: the byte position of each IDR picture's packet, its frame
    number, VideoIndex.offsets): the first key frame decoded after such a packet takes its number, the numbers the
    count fell short of given as _Lost (frames the decoder dropped without an error), so the frames from an IDR
    picture on are numbered as a decoder starting there numbers them, however far back this one started; SeekError
    when the first frame is no whole
    key frame (a damaged keyframe: decoding through it conceals it from the frames before, which a decoder starting
    there never saw, so the caller decodes from the start instead). `first_pos`: where the first packet must be (a
    seek to keyframe `first`); SeekError when it is elsewhere."""
    failed: list = []
    fed: list | None = [] if idrs else None
    step = _seconds_per_frame(stream)
    number, previous, idr = first, None, None  # idr: the number of an IDR picture fed whose frame has not come
    for frame in _decoded(container, stream, tolerant, failed, fed):
        if fed:
            if first_pos is not None and fed[0] != first_pos:
                raise SeekError(f"a seek to keyframe {first} landed at byte {fed[0]}, not {first_pos}")
            first_pos = None
            idr = next((idrs[pos] for pos in reversed(fed) if pos in idrs), idr)
            fed.clear()
        if idrs and number == first and (failed or not frame.key_frame or frame.is_corrupt):
            raise SeekError(f"keyframe {first} does not decode whole from itself (damaged data)")
        if failed:  # timed from the frame before them, or back from this one at the start
            before = frame_seconds(previous[1], previous[0], stream) if previous else \
                frame_seconds(frame, number + len(failed), stream) - (len(failed) + 1) * step
            for k in range(1, len(failed) + 1):
                yield number, _Lost(before + k * step)
                number += 1
            failed.clear()
        if idr is not None and frame.key_frame:
            for lost in range(number, idr):  # frames dropped without an error before this IDR picture
                yield lost, _Lost(lost * step)
            number, idr = max(number, idr), None
        yield number, frame
        previous, number = (number, frame), number + 1


# What a new decoder takes from the container's (stream.codec_context) besides its extradata: the size (MS-MPEG-4 and
# others carry none in their bitstream: without it the decoder does not open), the fourcc (MPEG-4's decoder works
# around a DivX or XviD encoder's bugs by it) and the colour description (a container's, e.g. Matroska's, where the
# bitstream has none: the region's conversion to RGB reads it off each frame)
_DECODER_PARAMETERS = ("width", "height", "codec_tag", "bits_per_coded_sample", "sample_aspect_ratio", "colorspace",
                       "color_range", "color_primaries", "color_trc")


def _new_decoder(stream):
    """A decoder of `stream`'s codec with its parameters (_DECODER_PARAMETERS, extradata) and threads, that has
    decoded nothing."""
    import av

    old = stream.codec_context
    decoder = av.CodecContext.create(old.name, "r")
    decoder.extradata = old.extradata
    for name in _DECODER_PARAMETERS:
        if (value := getattr(old, name)) is not None:  # none given: the decoder's default, as the container's had
            setattr(decoder, name, value)
    decoder.thread_type, decoder.thread_count = old.thread_type, old.thread_count
    return decoder


def _index_seconds(index: VideoIndex, frame: int, stream) -> float:
    """The time in seconds of frame `frame` of `index` (or its window) that did not decode: its timestamp's, else
    frame / the stream's frame rate (nan without one), as frame_seconds gives a decoded frame's."""
    if index.time_base:
        return float(index.pts[frame - index.start] * index.time_base)
    return frame * _seconds_per_frame(stream)


def _sought(container, stream, index: VideoIndex, first: int, path: Path, stride: int = 1,
            tolerant: bool = False) -> Iterator[tuple[int, Any]]:
    """(frame number, PyAV frame) decoded after seeking for frame `first` of a seekable `index` (or its window
    holding it), each located by its timestamp. With `stride` > 1 (frames first, first + stride, ... wanted) it
    seeks ahead to the keyframe before the next frame wanted wherever that skips more than _SKIP_MORE_THAN
    frames, so a sparse --stride over a long recording decodes the groups of pictures that hold its frames, not
    all of it. SeekError when the frames do not match the index (_from_keyframe_before); `tolerant`: see there."""
    wanted = first
    while True:
        for at, frame in _from_keyframe_before(container, stream, index, wanted, path, tolerant):
            yield at, frame
            if at >= wanted:
                wanted += stride * (1 + (at - wanted) // stride)  # the next one after `at`
                if stride > 1 and wanted < index.frames and index.keyframe_at_or_before(wanted) - at > _SKIP_MORE_THAN:
                    break  # seek ahead to it
        else:
            return


def _from_keyframe_before(container, stream, index: VideoIndex, frame: int, path: Path, tolerant: bool = False
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
        _seek(container, stream, key_pts - round(back / index.time_base) if back else key_pts)
        previous, retry, failed = None, tolerant and n < len(tries) - 1, []
        starting = tolerant  # until the frame decoding starts from is found (an open GOP's leading frames before it)
        for decoded in _decoded(container, stream, tolerant, failed):
            at = _located(index, decoded.pts, previous, path, gaps=tolerant)
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


def _seek(container, stream, pts: int) -> None:
    """Seek `stream` to the keyframe at or before timestamp `pts`; where the container refuses (an AVI asked for a
    time before its start), to its start."""
    import av

    try:
        container.seek(pts, stream=stream, backward=True, any_frame=False)
    except av.FFmpegError:
        container.seek(0)


def _seconds_per_frame(stream) -> float:
    """One frame's duration in seconds at `stream`'s frame rate: what a frame without a timestamp of its own is
    placed by (nan where the stream gives no rate)."""
    rate = stream.guessed_rate or stream.average_rate
    return 1 / float(rate) if rate else float("nan")


def frame_seconds(frame, index: int, stream) -> float:
    """The presentation time of decoded PyAV `frame` number `index` of `stream`, in seconds; for a frame without
    a timestamp (a raw .h264/.hevc stream has none), or whose timestamp is a decode-order counter (B-frames in AVI:
    _DECODE_ORDER_STAMPED; reordered frames came with times out of order), index / the stream's frame rate (nan
    if it has none)."""
    if frame.time is not None and not (stream.codec_context.has_b_frames and
                                       stream.container.format.name in _DECODE_ORDER_STAMPED):
        return float(frame.time)
    return index * _seconds_per_frame(stream)


def _regions_resized(frame, boxes: list[tuple[int, int, int, int]], size: tuple[int, int]) -> np.ndarray:
    if len(boxes) == 1:  # the usual job: no copy into a stack of one
        return region_resized(frame, boxes[0], size)[None]
    return np.stack([region_resized(frame, box, size) for box in boxes])


def frames_at(path: str | Path, indices: Iterable[int], index: VideoIndex | None = None) -> list[VideoFrame]:
    """The frames of `path` with the given decode-order indices, in index order, as RGB (H, W, 3); indices past
    the end, and frames that do not decode (damaged data), are absent. Only the requested frames are converted
    (see decoded_frames_at)."""
    return [VideoFrame(i, time_s, full_rgb(frame)) for i, time_s, frame in decoded_frames_at(path, indices, index)]


def decoded_frames_at(path: str | Path, indices: Iterable[int], index: VideoIndex | None = None
                      ) -> Iterator[tuple[int, float, Any]]:
    """(index, time in seconds, PyAV frame) of the frames of `path` with the given decode-order indices, in index
    order, one at a time (convert a frame before taking the next); indices past the end are absent, and so are
    frames that do not decode in a video that can be sought (damaged data: iter_frames' `undecodable`).

    None is converted. The decoder seeks to the keyframe before a wanted frame wherever that decodes fewer
    frames than going on from the frame wanted before it, so a dozen frames spread over a day-long recording
    (the report's thumbnails) cost a dozen groups of pictures, not the whole video. It finds the keyframes in
    `index` (the whole video's, e.g. the one a run kept) or else in a demux pass of its own. A video whose frames
    cannot be found by seeking (VideoIndex.seekable), or where a seek misleads, is decoded from its first frame
    up to the last index (a bare stream's too). Raises VideoError as iter_frames does.
    """
    wanted = sorted(set(indices))
    if not wanted:
        return
    path = Path(path)
    index = index if index is not None else index_video(path)
    runs = _seek_runs(wanted, index) if index.by_timestamp else [wanted]
    given = -1  # the last frame given
    with _open_threaded(path) as container:
        for n, frames in enumerate(runs):
            try:
                for decoded in _decoded_run(container, index if index.by_timestamp else None, frames, path):
                    given = decoded[0]
                    yield decoded
            except SeekError:  # the rest decoded from the first frame, in a container opened again
                rest = [f for later in runs[n:] for f in later if f > given]
                with _open_threaded(path) as again:
                    yield from _decoded_run(again, None, rest, path)
                return


def _seek_runs(wanted: list[int], index: VideoIndex) -> list[list[int]]:
    """The sorted `wanted` frames in runs, each decoded after a seek for its first. A frame joins the run before it
    unless seeking to its keyframe skips more than _SKIP_MORE_THAN frames after that run's last (the rule a
    stride's seeks ahead follow, _sought)."""
    runs: list[list[int]] = []
    for frame in wanted:
        if runs and index.keyframe_at_or_before(min(frame, index.frames - 1)) - runs[-1][-1] <= _SKIP_MORE_THAN:
            runs[-1].append(frame)
        else:
            runs.append([frame])
    return runs


@contextmanager
def _open_threaded(path: Path) -> Iterator[Any]:
    """_open(path) with its video stream on FFmpeg's automatic threads (set before it decodes anything)."""
    with _open(path) as container:
        container.streams.video[0].thread_type = "AUTO"
        yield container


def _decoded_run(container, index: VideoIndex | None, frames: list[int], path: Path
                 ) -> Iterator[tuple[int, float, Any]]:
    """decoded_frames_at's frames `frames` (sorted) of the container's video stream: with `index`, after a seek for
    the first of them (_sought: SeekError when the frames do not match the index), passing over packets that fail
    to decode and the frames they leave out; else counting frames from the start of a container just opened."""
    import av

    stream = container.streams.video[0]
    decoded = _sought(container, stream, index, frames[0], path, tolerant=True) if index is not None else \
        enumerate(_decoded(container, stream))
    given = 0
    try:
        for at, frame in decoded:
            while frames[given] < at:  # it did not decode (damaged data)
                given += 1
                if given == len(frames):
                    return
            if at == frames[given]:
                yield at, frame_seconds(frame, at, stream), frame
                given += 1
                if given == len(frames):
                    return
    except av.FFmpegError as exc:
        raise VideoError(f"{path} is corrupt or truncated ({exc})") from None


def _located(index: VideoIndex, pts: int | None, previous: int | None, path: Path, gaps: bool = False) -> int | None:
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
    if region.ndim != 3 or region.shape[2] != 3:
        raise VideoError(f"a frame is (H, W, 3), got shape {region.shape}")
    return np.ascontiguousarray(resize_rgb(region, size).transpose(2, 0, 1), dtype=np.uint8)


def crop_resize(rgb: np.ndarray, roi: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Crop region (x, y, w, h) of an (H, W, 3) uint8 frame and resize it to `size` (h, w): returns (3, h, w) uint8."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise VideoError(f"a frame is (H, W, 3), got shape {rgb.shape}")
    x, y, w, h = check_roi(roi, rgb.shape[1], rgb.shape[0])
    return resize_region(rgb[y : y + h, x : x + w], size)
