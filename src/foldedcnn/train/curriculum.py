"""Curriculum (paper, section 5): admit classes gradually so a folded model learns a few first.

The paper starts with max(K // 10, f) classes and adds max(K // 10, 1) every 60 epochs. Our runs
are a few epochs long, so the schedule is squeezed into `span` epochs: period = max(1, span // steps),
and when there are more steps than epochs each step admits more classes. Classes are admitted in
a seeded random order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)
class Curriculum:
    """Class admission schedule: `order` (K,) class ids, `start` first active, `step` per `period` epochs."""

    order: torch.Tensor
    start: int
    step: int
    period: int

    @classmethod
    def build(cls, num_classes: int, fold: int, span: int, seed: int) -> Curriculum:
        """Schedule for K = `num_classes` at `fold`, admitting every class by epoch `span` (0-based)."""
        k = int(num_classes)
        start = min(k, max(k // 10, fold))
        step = max(k // 10, 1)
        span = max(1, int(span))
        steps = math.ceil((k - start) / step)
        if steps > span:
            step = math.ceil((k - start) / span)
            steps = math.ceil((k - start) / step)
        period = max(1, span // steps) if steps else 1
        order = torch.randperm(k, generator=torch.Generator().manual_seed(seed))
        return cls(order, start, step, period)

    @classmethod
    def all_classes(cls, num_classes: int) -> Curriculum:
        """No curriculum: every class active from the start."""
        return cls(torch.arange(num_classes), num_classes, 1, 1)

    @property
    def num_classes(self) -> int:
        return int(self.order.numel())

    def num_active(self, epoch: int) -> int:
        """How many classes are active in 0-based `epoch`."""
        return min(self.num_classes, self.start + self.step * (epoch // self.period))

    def active_mask(self, epoch: int) -> torch.Tensor:
        """Bool (K,) mask of the classes active in 0-based `epoch`."""
        mask = torch.zeros(self.num_classes, dtype=torch.bool)
        mask[self.order[: self.num_active(epoch)]] = True
        return mask

    def to_dict(self) -> dict[str, object]:
        """JSON-able form (order as a list)."""
        return {"order": self.order.tolist(), "start": self.start, "step": self.step, "period": self.period}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Curriculum:
        return cls(torch.tensor(d["order"], dtype=torch.long), int(d["start"]), int(d["step"]), int(d["period"]))
