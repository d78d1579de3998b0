"""Learning-rate schedules as pure functions of training progress, so a resumed run needs no scheduler state."""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine")


def learning_rate(base: float, schedule: str, progress: float, warmup: float = 0.0) -> float:
    """The learning rate at `progress` in [0, 1] (fraction of all training steps done).

    The first `warmup` (a fraction of all steps) ramps linearly from 0 to `base`; then "constant" stays at
    `base` and "cosine" decays as base * (1 + cos(pi * p)) / 2 from `base` down to 0, p running from 0 to 1
    over the steps after the warm-up.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup or warmup >= 1.0:
        return base * progress / warmup
    if schedule == "constant":
        return base
    after = (progress - warmup) / (1.0 - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * after))
