"""Videos shown turned (a phone's portrait video carries a display matrix): frames, regions and crops are taken in
the frame as shown, as players, FFmpeg's command line and OpenCV show it."""

import itertools

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from video_clips import write_turned_clip

from foldedcnn.data._orientation import AS_STORED, Orientation
from foldedcnn.data._region import full_rgb
from foldedcnn.data.noscope import build_video_task
from foldedcnn.data.video import VideoError, decoded_frames_at, frames_at, iter_frames, shown_orientation

TURNS = list(itertools.product((0, 90, 180, 270), (False, True), (False, True)))  # PyAV's (degrees, hflip, vflip)
ORIENTATIONS = [Orientation(*o) for o in itertools.product((False, True), repeat=3)]


def _stored_and_shown(clip, frame=0):
    """Frame `frame` of `clip` as decoded (its stored pixels) and as foldedcnn shows it."""
    (_, _, decoded), = decoded_frames_at(clip, [frame])
    return full_rgb(decoded, AS_STORED), frames_at(clip, [frame])[0].rgb


@pytest.mark.parametrize("degrees,hflip,vflip", TURNS)
def test_frames_are_shown_as_their_display_matrix_says(tmp_path, degrees, hflip, vflip):
    """Each of the 16 matrices PyAV writes (turned counterclockwise by `degrees`, then mirrored, as its documentation
    says): the frame shown is the stored one turned so. For the turns without mirrors OpenCV, which turns frames
    by their matrix on its own, reads the same pixels (it does not follow mirrors)."""
    clip = write_turned_clip(tmp_path / "turned.mp4", 3, degrees, hflip, vflip)
    stored, shown = _stored_and_shown(clip)
    expected = np.rot90(stored, degrees // 90)
    expected = expected[:, ::-1] if hflip else expected
    expected = expected[::-1] if vflip else expected
    assert np.array_equal(shown, expected)
    assert shown_orientation(clip).shown_size(96, 64) == expected.shape[1::-1]
    if not (hflip or vflip):
        ok, bgr = cv2.VideoCapture(str(clip)).read()
        assert ok and np.array_equal(bgr[..., ::-1], shown)


def test_a_video_without_a_matrix_is_shown_as_stored(tmp_path):
    clip = write_turned_clip(tmp_path / "plain.mp4", 3, None)
    stored, shown = _stored_and_shown(clip)
    assert shown_orientation(clip) == AS_STORED and np.array_equal(stored, shown)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ORIENTATIONS), st.integers(1, 12), st.integers(1, 12), st.data())
def test_a_region_of_the_shown_frame_is_the_stored_box_turned(turn, width, height, data):
    """For every turn and region of the shown frame: cutting the shown frame equals turning the stored box's cut;
    on_tensor turns (..., h, w) tensors as on_image turns (h, w, ...) arrays."""
    stored = np.arange(width * height * 2).reshape(height, width, 2)
    shown_w, shown_h = turn.shown_size(width, height)
    assert turn.on_image(stored).shape[:2] == (shown_h, shown_w)
    x, y = data.draw(st.integers(0, shown_w - 1)), data.draw(st.integers(0, shown_h - 1))
    w, h = data.draw(st.integers(1, shown_w - x)), data.draw(st.integers(1, shown_h - y))
    bx, by, bw, bh = turn.stored_box((x, y, w, h), width, height)
    assert np.array_equal(turn.on_image(stored)[y:y + h, x:x + w], turn.on_image(stored[by:by + bh, bx:bx + bw]))
    assert turn.stored_size((h, w)) == ((w, h) if turn.transpose else (h, w))
    tensor = torch.from_numpy(stored).permute(2, 0, 1)  # (2, h, w)
    assert torch.equal(turn.on_tensor(tensor), torch.from_numpy(turn.on_image(stored).copy()).permute(2, 0, 1))


@pytest.mark.parametrize("degrees,hflip", [(90, False), (270, False), (180, False), (90, True)])
def test_regions_and_crops_of_a_turned_video_are_taken_as_shown(tmp_path, degrees, hflip):
    """A region of the shown frame: exactly its pixels (the stored box converted, then turned), and resized, the
    stored box resized to the turned size, then turned: the same bitstream without a matrix, cut there, turned."""
    turned = write_turned_clip(tmp_path / "turned.mp4", 12, degrees, hflip)
    plain = write_turned_clip(tmp_path / "plain.mp4", 12, None)
    turn = shown_orientation(turned)
    assert not turn.as_stored
    shown_w, shown_h = turn.shown_size(96, 64)
    roi = (6, 10, shown_w - 20, shown_h - 30)  # (6, 10, 44, 66) of a portrait 64x96 frame
    full = [f.rgb for f in iter_frames(turned)]
    x, y, w, h = roi
    assert all(np.array_equal(r.rgb, f[y:y + h, x:x + w]) for r, f in zip(iter_frames(turned, roi=roi), full,
                                                                            strict=True))
    box, size = turn.stored_box(roi, 96, 64), (24, 32)
    resized = [f.rgb for f in iter_frames(turned, roi=roi, size=size)]
    assert resized[0].shape == (24, 32, 3)
    stored = [turn.on_image(f.rgb) for f in iter_frames(plain, roi=box, size=turn.stored_size(size))]
    assert all(np.array_equal(a, b) for a, b in zip(resized, stored, strict=True))
    several = next(iter_frames(turned, regions=[roi, (0, 0, shown_w, shown_h)], size=size)).rgb
    assert several.shape == (2, 24, 32, 3) and np.array_equal(several[0], resized[0])


def test_a_region_outside_the_shown_frame_names_how_it_is_shown(tmp_path):
    """(0, 0, 96, 10) fits the stored 96x64 frame, not the 64x96 one a portrait video shows."""
    clip = write_turned_clip(tmp_path / "portrait.mp4", 3, 270)
    with pytest.raises(VideoError, match=r"outside the 64x96 frame shown rotated 90° clockwise \(stored 96x64\)"):
        next(iter_frames(clip, roi=(0, 0, 96, 10)))
    assert next(iter_frames(clip, roi=(0, 0, 10, 96))).rgb.shape == (96, 10, 3)


def test_a_video_task_of_a_turned_video_records_the_shown_frame_size(tmp_path):
    """What a checkpoint trained on it says its region was drawn on (the job compares it with its videos')."""
    clip = write_turned_clip(tmp_path / "portrait.mp4", 40, 270)
    task = build_video_task(clip, (10, 50, 40, 40), size=(20, 20), warmup=5)
    assert task.meta["frame_size"] == [64, 96] and task.images.shape == (40, 3, 20, 20)
