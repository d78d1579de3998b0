"""RowTimes: frames a video's file does not hold, told from its CSV rows' times (label._row_times)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from foldedcnn.label._row_times import GAPS_LISTED, RowTimes

FPS = (24.0, 25.0, 30000 / 1001, 30.0, 60.0)


@st.composite
def _lost_frames(draw):
    """(fps, stride, the rows' times as a CSV holds them, frames the file lost between its first and last row): a
    constant-rate recording of N frames that lost up to 3 stretches of them (damaged parts its demuxer passed over),
    labelled at `stride` over the frames left (their order in the file); its times stored in MPEG-TS's or Matroska's
    time base."""
    fps, stride = draw(st.sampled_from(FPS)), draw(st.integers(1, 5))
    n = draw(st.integers(60, 400))
    kept = np.ones(n, bool)
    for _ in range(draw(st.integers(0, 3))):
        start, length = draw(st.integers(1, n - 1)), draw(st.integers(1, n // 9))
        kept[start:start + length] = False  # from frame 1 on: a file starts at its first frame
    held = np.flatnonzero(kept)[::stride]  # each row's frame in the recording
    time_base = draw(st.sampled_from([1 / 90000, 1 / 1000]))  # MPEG-TS's; Matroska's (milliseconds)
    start = draw(st.integers(0, 10**6)) * time_base
    times = np.round((start + np.round(held / fps / time_base) * time_base), 6)  # as the CSV writes them
    lost = int(held[-1] - held[0]) - stride * (len(held) - 1)
    return fps, stride, times, lost


def _fed(times: np.ndarray, fps: float, stride: int, cuts: list[int]) -> RowTimes:
    rows = RowTimes(fps, stride)
    for a, b in itertools.pairwise(sorted({0, len(times), *(c % (len(times) + 1) for c in cuts)})):
        rows.add(times[a:b])
    return rows


@settings(max_examples=300, deadline=None)
@given(_lost_frames(), st.lists(st.integers(0, 10**6), max_size=6))
def test_the_frames_a_recording_lost_are_counted_from_its_rows_times_however_they_come_in_chunks(lost_frames, cuts):
    fps, stride, times, lost = lost_frames
    rows = _fed(times, fps, stride, cuts)
    assert rows.missing_frames == lost
    assert rows.last_s == times[-1]
    steps = np.diff(times) * fps
    jumps = np.flatnonzero(steps > stride + 0.5)
    assert rows.gaps == [[times[i], times[i + 1]] for i in jumps[:GAPS_LISTED]]
    assert not rows.short_of(times[-1] + stride / fps)  # a file that ends where its container says
    assert rows.short_of(times[-1] + (stride + 1) / fps)  # one frame more was declared


def test_uneven_times_count_no_frame_missing():
    """A variable frame rate (a screen recording: frames 10 to 90 ms apart, 20 frames/s on average, what the
    container gives as its rate): a long step is no sign of a lost frame, so none are counted (None: cannot be
    told). A rate that only jitters (20 to 50 ms apart at 30 frames/s) loses none either."""
    rng = np.random.default_rng(0)
    times = np.round(np.cumsum(rng.uniform(0.010, 0.090, 600)), 6)
    assert _fed(times, 20.0, 1, [100, 250]).missing_frames is None
    jitter = np.round(np.cumsum(rng.uniform(0.020, 0.050, 600)), 6)
    assert _fed(jitter, 30.0, 1, [100, 250]).missing_frames == 0
    # the rate a container guessed for a variable-rate MPEG-TS (2000 frames/s): every step looks long, none short
    assert _fed(times, 2000.0, 1, [100, 250]).missing_frames is None


def test_a_frame_whose_damaged_timestamp_is_wrong_hides_no_frame():
    """Damaged data may give a frame a wrong time: the one before it again (an MPEG-PS pack header), or one far ahead
    (a damaged AVI index entry: 11.12 s between 0.40 and 0.44). The frame still takes its place in the recording,
    so the steps around it count no frame missing; the times stay even (1 or 2 steps of hundreds short)."""
    repeated = np.round(np.r_[np.arange(150), 149, np.arange(151, 200), np.arange(250, 350)] / 25.0, 6)
    rows = _fed(repeated, 25.0, 1, [])
    assert rows.missing_frames == 50 and [7.96, 10.0] in rows.gaps  # 200-249 lost; frame 150 stamped 149's time
    ahead = np.round(np.r_[np.arange(11), 278, np.arange(12, 300)] / 25.0, 6)
    assert _fed(ahead, 25.0, 1, [5, 11, 12]).missing_frames == 0


def test_without_a_frame_rate_nothing_is_told():
    rows = _fed(np.arange(10) / 25.0, 0.0, 1, [])
    assert rows.missing_frames is None and not rows.short_of(100.0) and rows.last_s == 0.36


def test_times_that_are_not_numbers_are_left_out():
    """A row whose time is nan (a frame without a timestamp: only where the stream gives no rate, which RowTimes is
    then not told) cannot be placed: it is left out, not a crash, and the step over it looks like a frame missing."""
    rows = _fed(np.r_[np.arange(5), np.nan, np.arange(6, 10)] / 25.0, 25.0, 1, [5])
    assert rows.missing_frames == 1 and rows.last_s == 0.36 and rows.gaps == [[0.16, 0.24]]


def test_a_video_is_short_of_its_declared_length_only_where_its_times_are_even():
    """check_complete: a Matroska video whose rows stop 2 frames before the length it declares is truncated; a
    variable-rate one is not (its last frame may last longer than the rate's frame), nor are its gaps counted."""
    from foldedcnn.label._job_video import VideoResult, check_complete

    even = _fed(np.round(np.arange(298) / 25.0, 6), 25.0, 1, [])
    result = check_complete(VideoResult("v.mkv", frames=298, expected_seconds=12.0), even)
    assert result.truncated and result.error.startswith("truncated: its frames stop at 11.88 s of the 12.00 s")
    uneven = _fed(np.round(np.cumsum(np.random.default_rng(1).uniform(0.010, 0.070, 298)), 6), 25.0, 1, [])
    result = check_complete(VideoResult("v.mkv", frames=298, expected_seconds=float(uneven.last_s) + 0.5), uneven)
    assert not result.truncated and result.error is None and result.missing_frames is None and result.gaps_s == []
