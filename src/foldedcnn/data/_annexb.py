"""Bare H.264/HEVC streams (Annex B byte streams, a camera's .h264 dump): which access units start with an IDR
picture."""

# Per codec of a bare stream (no container: a camera's .h264 dump): how a NAL unit's type is read from the byte after
# its start code, the types of picture slices, and those of an IDR picture, which starts a closed group of pictures
# (HEVC's CRA and H.264's recovery points, which FFmpeg also calls keyframes, have leading pictures that a decoder
# starting there drops)
BARE_FORMATS = frozenset({"h264", "hevc"})  # the demuxers of bare H.264 and HEVC streams
IDR_TYPES = {"h264": (lambda byte: byte & 0x1F, range(1, 6), frozenset({5})),
             "hevc": (lambda byte: (byte >> 1) & 0x3F, range(0, 32), frozenset({19, 20}))}


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
