"""Decoding packet by packet from where a container stands: past damaged data when asked, and counting frames
where their timestamps cannot locate them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._bare_streams import holds_timestamps
from ._video_errors import SeekError

# Containers whose timestamps, with B-frames, are counters in decode order (AVI): its reordered frames come out
# with them out of order (_video_probe tells where its frames can still be located)
DECODE_ORDER_STAMPED = frozenset({"avi"})


def decode_from_here(container, stream, tolerant: bool = False, failed: list | None = None,
                     fed: list | None = None) -> Iterator[Any]:
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
            decoder, damaged = new_decoder(stream), False
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
class Lost:
    """A frame counted in the place of a packet that failed to decode (counted), and the time given it."""

    time_s: float


def counted(container, stream, tolerant: bool = False, first: int = 0, idrs: dict[int, int] | None = None,
            first_pos: int | None = None) -> Iterator[tuple[int, Any]]:
    """(frame number, PyAV frame) counted from `first`, the number of the stream's first frame where the container
    stands (a bare stream read from a keyframe: _open_at), for a video whose frames cannot be located by their
    timestamps. `tolerant`: a packet that fails to decode is passed over (decode_from_here) and counted as a frame
    that did not decode (Lost) in the place of the next frame decoded, since a packet holds one frame: the frames
    after it keep their numbers. Its time is a frame's duration after the frame before it (before the frame after
    it, at the start). Packets that fail after the last frame are not counted (a file cut short ends in a part of
    a packet). `idrs` (a bare stream's or an AVI's: the byte position of each IDR picture's packet, its frame
    number, VideoIndex.offsets): the first key frame decoded after such a packet takes its number, the numbers the
    count fell short of given as Lost (frames the decoder dropped without an error), so the frames from an IDR
    picture on are numbered as a decoder starting there numbers them, however far back this one started; SeekError
    when the first frame is no whole
    key frame (a damaged keyframe: decoding through it conceals it from the frames before, which a decoder starting
    there never saw, so the caller decodes from the start instead). `first_pos`: where the first packet must be (a
    seek to keyframe `first`); SeekError when it is elsewhere."""
    failed: list = []
    fed: list | None = [] if idrs else None
    step = seconds_per_frame(stream)
    number, previous, idr = first, None, None  # idr: the number of an IDR picture fed whose frame has not come
    for frame in decode_from_here(container, stream, tolerant, failed, fed):
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
                yield number, Lost(before + k * step)
                number += 1
            failed.clear()
        if idr is not None and frame.key_frame:
            for lost in range(number, idr):  # frames dropped without an error before this IDR picture
                yield lost, Lost(lost * step)
            number, idr = max(number, idr), None
        yield number, frame
        previous, number = (number, frame), number + 1


# What a new decoder takes from the container's (stream.codec_context) besides its extradata: the size (MS-MPEG-4 and
# others carry none in their bitstream: without it the decoder does not open), the fourcc (MPEG-4's decoder works
# around a DivX or XviD encoder's bugs by it) and the colour description (a container's, e.g. Matroska's, where the
# bitstream has none: the region's conversion to RGB reads it off each frame)
_DECODER_PARAMETERS = ("width", "height", "codec_tag", "bits_per_coded_sample", "sample_aspect_ratio", "colorspace",
                       "color_range", "color_primaries", "color_trc")


def new_decoder(stream):
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


def seconds_per_frame(stream) -> float:
    """One frame's duration in seconds at `stream`'s frame rate: what a frame without a timestamp of its own is
    placed by (nan where the stream gives no rate)."""
    rate = stream.guessed_rate or stream.average_rate
    return 1 / float(rate) if rate else float("nan")


def frame_seconds(frame, index: int, stream) -> float:
    """The presentation time of decoded PyAV `frame` number `index` of `stream`, in seconds; for a frame of a bare
    stream (.h264, .m4v, ...: none, or one its parser made up), or whose timestamp is a decode-order counter
    (B-frames in AVI: DECODE_ORDER_STAMPED; reordered frames came with times out of order), index / the stream's
    frame rate (nan if it has none)."""
    if frame.time is not None and holds_timestamps(stream.container) and not (
            stream.codec_context.has_b_frames and stream.container.format.name in DECODE_ORDER_STAMPED):
        return float(frame.time)
    return index * seconds_per_frame(stream)
