"""Bare streams (a camera's .h264, .mjpeg or .m2v dump: one codec's frames in no container, with no timestamps):
which of their packets a decoder can start from and count frames on (the frames from that packet on in the file
being the frames from its number on in display order)."""

# libavformat's AVFMT_NOTIMESTAMPS: the demuxer of a bare stream, whose file holds no timestamps; its parser makes
# some up for some codecs (MPEG-4 Part 2, MPEG-2) from the frame rate and the frames it reads, so damaged data shifts
# them, and a seek by them may fail
_AVFMT_NOTIMESTAMPS = 0x80

# Per codec of an Annex B stream (H.264, HEVC): how a NAL unit's type is read from the byte after its start code, the
# types of picture slices, and those of an IDR picture, which starts a closed group of pictures (HEVC's CRA and
# H.264's recovery points, which FFmpeg also calls keyframes, have leading pictures that a decoder starting there
# drops)
IDR_TYPES = {"h264": (lambda byte: byte & 0x1F, range(1, 6), frozenset({5})),
             "hevc": (lambda byte: (byte >> 1) & 0x3F, range(0, 32), frozenset({19, 20}))}
_MPEG12 = frozenset({"mpeg1video", "mpeg2video"})
_PICTURE_START, _VOP_START = b"\x00\x00\x01\x00", b"\x00\x00\x01\xb6"


def holds_timestamps(container) -> bool:
    """Whether the frames of an open container's file carry timestamps of their own (false for a bare stream)."""
    return not container.format.flags & _AVFMT_NOTIMESTAMPS


def is_idr(data: bytes, codec: str) -> bool:
    """Whether the first picture slice of `data`, an Annex B access unit of `codec` (NAL units after 00 00 01 start
    codes: parameter sets, SEI and delimiters before the slices), is an IDR picture's."""
    nal_type, slices, idr = IDR_TYPES[codec]
    at = data.find(b"\x00\x00\x01")
    while 0 <= at < len(data) - 3:
        if (kind := nal_type(data[at + 3])) in slices:
            return kind in idr
        at = data.find(b"\x00\x00\x01", at + 3)
    return False


def starts_counting(data: bytes, codec: str, intra_only: bool, has_b_frames: bool) -> bool:
    """Whether a decoder of a bare stream of `codec` can start at keyframe packet `data` and count frames from its
    number: any packet of an intra-only codec (MJPEG); an IDR picture (H.264, HEVC); an MPEG-1/2 I-picture first in
    display order in its group (temporal_reference 0: no B-picture before it refers to the group before); an MPEG-4
    Part 2 I-VOP in a stream without B-frames. Otherwise (other codecs, MPEG-4 with B-frames) never: its frames are
    counted by one decoder from the first."""
    if intra_only:
        return True
    if codec in IDR_TYPES:
        return is_idr(data, codec)
    if codec in _MPEG12:  # picture header: temporal_reference (10 bits), picture_coding_type (3 bits; 1 is I)
        at = data.find(_PICTURE_START)
        return 0 <= at <= len(data) - 6 and data[at + 4] == 0 and data[at + 5] >> 6 == 0 and \
            (data[at + 5] >> 3) & 7 == 1
    if codec == "mpeg4" and not has_b_frames:  # VOP header: vop_coding_type (2 bits; 0 is I)
        at = data.find(_VOP_START)
        return 0 <= at <= len(data) - 5 and data[at + 4] >> 6 == 0
    return False
