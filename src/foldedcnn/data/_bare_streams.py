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
_OBU_SEQUENCE_HEADER, _OBU_FRAME_HEADERS = 1, frozenset({3, 6})  # AV1 OBU types: a frame header, or a whole frame


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
    Part 2 I-VOP in a stream without B-frames; an AV1 temporal unit that shows a key frame. Otherwise (other codecs,
    MPEG-4 with B-frames) never: its frames are counted by one decoder from the first. `codec`: FFmpeg's canonical
    name ("av1" for libdav1d's streams)."""
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
    if codec == "av1":
        return _shows_a_key_frame(data)
    return False


def _shows_a_key_frame(data: bytes) -> bool:
    """Whether AV1 temporal unit `data` (OBUs with their sizes, as the demuxer of a bare .obu stream gives them) shows a
    key frame: its first frame header has show_existing_frame 0, frame_type KEY_FRAME (0) and show_frame 1, and such
    a frame refreshes every reference (each temporal unit shows one frame, in display order: the ones after it in the
    file come after it). False for what cannot be read so."""
    at, reduced = 0, False  # reduced_still_picture_header, from a sequence header before the frame's
    try:
        while at < len(data):
            header = data[at]
            kind = header >> 3 & 0xF
            at += 1 + (header >> 2 & 1)  # the header, and its extension byte
            if not header & 2:  # no size field: not the low-overhead form
                return False
            size, shift = 0, 0
            while True:  # leb128
                byte = data[at]
                at, size, shift = at + 1, size | (byte & 0x7F) << shift, shift + 7
                if not byte & 0x80:
                    break
            if kind == _OBU_SEQUENCE_HEADER:  # seq_profile (3 bits), still_picture, reduced_still_picture_header
                reduced = bool(data[at] >> 3 & 1)
            elif kind in _OBU_FRAME_HEADERS:
                first = data[at]  # show_existing_frame, frame_type (2 bits), show_frame
                return reduced or (not first >> 7 and first >> 5 & 3 == 0 and bool(first >> 4 & 1))
            at += size
    except IndexError:  # cut short
        return False
    return False
