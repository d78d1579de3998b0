"""What the times of a video's CSV rows say of frames its file does not hold: where they jump over frames (a demuxer
passes over a damaged part of an MKV, MPEG-TS or MPEG-PS file without an error and counts the frames after it on,
so nothing else tells), and where they stop (a video whose frames stop before the length its container declares is
truncated). Read from the rows themselves, a chunk at a time as the CSV is merged or read back, so a rerun of a
finished job says the same."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Gaps listed in summary.json (the count covers all of them): a file damaged all over has thousands
GAPS_LISTED = 100
# The rows' times are even (a constant frame rate, the container's) when at most this share of the steps between
# rows is shorter than the rate allows (a variable frame rate has them), and at least _REGULAR_SHARE is the stride's
# (a rate the container guessed wrong, 2000 frames/s for a variable-rate MPEG-TS, makes every step look long);
# otherwise a longer step is no sign of frames missing, and none are counted
_UNEVEN_SHARE = 0.01
_REGULAR_SHARE = 0.5


class RowTimes:
    """The presentation times (seconds) of a video's consecutive CSV rows, given in order a chunk at a time (`add`),
    against the video's frame rate `fps` and the job's `stride`: consecutive rows are `stride` frames apart."""

    def __init__(self, fps: float, stride: int) -> None:
        self.fps, self.stride = fps, stride
        self.last_s: float | None = None  # the last row's time
        # [time of the row before, time of the row after] of the first GAPS_LISTED steps over stride + 1/2 frames
        # (one beside a frame whose damaged timestamp is wrong too)
        self.gaps: list[list[float]] = []
        self._missing = self._steps = self._short = self._regular = 0

    def add(self, times: Sequence[float]) -> None:
        """The times (N,) of the next N rows; one that is not a number (a frame without a timestamp in a stream
        without a frame rate: nan) is left out."""
        t = np.asarray(times, dtype=np.float64)
        t = t[np.isfinite(t)]
        if self.last_s is not None:
            t = np.concatenate([[self.last_s], t])
        if len(t):
            self.last_s = float(t[-1])
        if len(t) < 2 or self.fps <= 0:
            return
        frames = np.diff(t) * self.fps  # each step between rows in frames of the nominal rate
        self._steps += len(frames)
        self._short += int(np.count_nonzero(frames < self.stride - 0.5))
        self._regular += int(np.count_nonzero(np.abs(frames - self.stride) <= 0.5))
        # every step's frames over the stride's, a step back too: a frame whose damaged timestamp repeats the one
        # before it, or jumps ahead and back, takes its place in the recording and hides no frame
        self._missing += int(np.rint(frames).sum()) - self.stride * len(frames)
        jumps = np.flatnonzero(frames > self.stride + 0.5)
        room = GAPS_LISTED - len(self.gaps)
        self.gaps += [[round(float(t[i]), 6), round(float(t[i + 1]), 6)] for i in jumps[:max(0, room)]]

    @property
    def missing_frames(self) -> int | None:
        """Frames whose time the rows pass over: between the first row and the last, the frames the rate gives their
        times over the rows' (a step of stride + k frames misses k); None where that cannot be told: no frame rate,
        or uneven times (more than _UNEVEN_SHARE of the steps shorter than stride frames, or fewer than
        _REGULAR_SHARE of stride frames)."""
        if self.fps <= 0 or self._short > _UNEVEN_SHARE * self._steps or self._regular < _REGULAR_SHARE * self._steps:
            return None
        return max(0, self._missing)

    def short_of(self, declared_s: float) -> bool:
        """Whether the rows stop short of `declared_s` seconds, the video's length its container declares (to the
        end of its last frame): more than the stride's frames after the last row, half a frame of slack."""
        return self.fps > 0 and self.last_s is not None and (declared_s - self.last_s) * self.fps > self.stride + 0.5
