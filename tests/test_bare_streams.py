"""Where a decoder of a bare stream can start and count frames (data._bare_streams.starts_counting), read from the
headers of the packet's first picture."""

from hypothesis import given
from hypothesis import strategies as st

from foldedcnn.data._bare_streams import starts_counting

_SEQUENCE_AND_GOP = b"\x00\x00\x01\xb3\x06\x00\x40\x13\xff\xff\xe0\x18\x00\x00\x01\xb8\x00\x08\x00\x40"


@given(temporal_reference=st.integers(0, 1023), coding_type=st.integers(1, 4), rest=st.binary(max_size=8),
       codec=st.sampled_from(["mpeg1video", "mpeg2video"]), has_b_frames=st.booleans())
def test_an_mpeg12_picture_starts_counting_when_it_is_an_i_picture_first_in_its_group(
        temporal_reference, coding_type, rest, codec, has_b_frames):
    """Picture header after 00 00 01 00: temporal_reference (10 bits: its place in display order in its group),
    picture_coding_type (3 bits: 1 I, 2 P, 3 B, 4 D). Only an I-picture with temporal_reference 0 has no B-picture
    before it in display order that could refer to the group before."""
    fields = temporal_reference << 6 | coding_type << 3
    picture = b"\x00\x00\x01\x00" + fields.to_bytes(2, "big") + rest
    expected = temporal_reference == 0 and coding_type == 1
    assert starts_counting(_SEQUENCE_AND_GOP + picture, codec, False, has_b_frames) == expected
    assert not starts_counting(_SEQUENCE_AND_GOP, codec, False, has_b_frames)  # no picture in it


@given(coding_type=st.integers(0, 3), rest=st.binary(max_size=8), has_b_frames=st.booleans())
def test_an_mpeg4_vop_starts_counting_when_it_is_an_i_vop_of_a_stream_without_b_frames(coding_type, rest,
                                                                                     has_b_frames):
    """VOP header after 00 00 01 B6: vop_coding_type (2 bits: 0 I, 1 P, 2 B, 3 S). With B-frames an I-VOP may have
    B-VOPs shown before it that refer to the group before: never a start then."""
    vol = b"\x00\x00\x01\xb0\x01\x00\x00\x01\xb5\x89\x13\x00\x00\x01\x00\x00\x00\x01\x20\x00\xc4\x88"
    vop = b"\x00\x00\x01\xb6" + bytes([coding_type << 6 | 0x10]) + rest
    assert starts_counting(vol + vop, "mpeg4", False, has_b_frames) == (coding_type == 0 and not has_b_frames)


@given(data=st.binary(max_size=64), codec=st.sampled_from(["mjpeg", "h263", "av1", "vc1"]))
def test_intra_only_codecs_start_anywhere_and_unparsed_ones_never(data, codec):
    """Any JPEG of an MJPEG dump is a start (intra-only codecs); codecs whose headers are not read never start one,
    whatever the packet holds: one decoder counts their frames."""
    assert starts_counting(data, codec, codec == "mjpeg", False) == (codec == "mjpeg")


def _obu(kind: int, payload: bytes) -> bytes:
    """An AV1 OBU of type `kind` with its size field (leb128)."""
    size, leb = len(payload), b""
    while True:
        byte, size = size & 0x7F, size >> 7
        leb += bytes([byte | (0x80 if size else 0)])
        if not size:
            return bytes([kind << 3 | 2]) + leb + payload


@given(show_existing=st.booleans(), frame_type=st.integers(0, 3), show_frame=st.booleans(), whole=st.booleans(),
       padding=st.binary(min_size=0, max_size=200))
def test_an_av1_temporal_unit_starts_counting_when_it_shows_a_key_frame(show_existing, frame_type, show_frame,
                                                                        whole, padding):
    """A temporal unit (temporal delimiter, sequence header, then a frame header or a whole frame OBU) starts counting
    when its frame is a key frame shown at once (it refreshes every reference); a key frame kept hidden and shown
    later, another frame type, or one showing an earlier frame does not. Sizes of 128 bytes or more take 2 bytes."""
    header = bytes([show_existing << 7 | frame_type << 5 | show_frame << 4]) + padding
    unit = _obu(2, b"") + _obu(1, b"\x00\x00\x00\x03" + padding) + _obu(6 if whole else 3, header)
    expected = not show_existing and frame_type == 0 and show_frame
    assert starts_counting(unit, "av1", False, False) == expected
    assert not starts_counting(unit[:len(unit) - len(header) - 1], "av1", False, False)  # cut before its frame
