"""The accuracy-vs-throughput frontier of the folds of one model, and the recommended fold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import FoldedCNNError


@dataclass(frozen=True)
class Candidate:
    """One fold of the model: test top-1 (%), end-to-end images/s on `backend`, its checkpoint, and how it was
    trained ("scratch" or "warm start"; `note`: why a fold was trained from scratch)."""

    fold: int
    top1: float
    images_per_s: float
    backend: str
    checkpoint: Path
    trained: str = "scratch"
    note: str | None = None


@dataclass(frozen=True)
class Choice:
    """Every candidate (by fold), the Pareto frontier, and the recommendation for `max_drop` points of top-1."""

    candidates: tuple[Candidate, ...]
    frontier: tuple[Candidate, ...]
    recommended: Candidate
    max_drop: float

    @property
    def reference(self) -> Candidate:
        """The original (f = 1)."""
        return next(c for c in self.candidates if c.fold == 1)

    def rows(self) -> list[dict[str, Any]]:
        """One table row per candidate: its numbers, drop and speed-up against f = 1, frontier membership."""
        ref = self.reference
        return [{**asdict(c), "checkpoint": str(c.checkpoint), "drop": round(ref.top1 - c.top1, 2),
                 "speedup": round(c.images_per_s / ref.images_per_s, 2), "frontier": c in self.frontier,
                 "recommended": c == self.recommended} for c in self.candidates]


def pareto_frontier(candidates: Sequence[Candidate]) -> tuple[Candidate, ...]:
    """The candidates no other beats on both axes (at least as accurate and as fast, better on one), fastest last."""
    def dominated(c: Candidate) -> bool:
        return any(o.top1 >= c.top1 and o.images_per_s >= c.images_per_s
                   and (o.top1 > c.top1 or o.images_per_s > c.images_per_s) for o in candidates)

    return tuple(sorted((c for c in candidates if not dominated(c)), key=lambda c: c.images_per_s))


def recommend(candidates: Sequence[Candidate], max_drop: float) -> Choice:
    """Of the folds whose top-1 is at most `max_drop` points below the original's (f = 1 always qualifies), the
    fastest here. On a GPU that is the largest such fold; where folding buys no speed (a CPU) it need not be."""
    if max_drop < 0:
        raise FoldedCNNError(f"max_drop must be >= 0 points of top-1, got {max_drop}")
    ref = next((c for c in candidates if c.fold == 1), None)
    if ref is None:
        raise FoldedCNNError("choosing a fold needs the original (f = 1) among the candidates")
    ok = [c for c in candidates if c.top1 >= ref.top1 - max_drop]
    best = max(ok, key=lambda c: (c.images_per_s, c.fold))
    return Choice(tuple(sorted(candidates, key=lambda c: c.fold)), pareto_frontier(candidates), best, max_drop)
