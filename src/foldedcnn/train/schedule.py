"""Learning-rate schedules as pure functions of training progress, so a resumed run needs no scheduler state."""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine")


def learning_rate(base: float, schedule: str, progress: float) -> float:
    """The learning rate at `progress` in [0, 1] (fraction of all training steps done).

    "constant": `base` throughout; "cosine": base * (1 + cos(pi * progress)) / 2, from `base` down to 0.
    """
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
