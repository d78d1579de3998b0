"""Turn per-frame logits into CSV rows: probabilities, label, and the cascade's `uncertain` flag.

Binary models (NoScope's cascade): score = P(class 1). A frame with score <= LO is labelled
class 0 and one with score >= HI class 1 without further work; a frame with LO < score < HI is
uncertain, goes to the expensive reference model, and carries the model's argmax as a provisional
label. Multi-class models: score = top-1 probability, label = argmax, uncertain when score < HI.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

DECIMALS = 6


def is_multiclass(class_names: Sequence[str]) -> bool:
    """Whether a model of these classes is labelled as multi-class (score = top-1 probability) or binary."""
    return len(class_names) > 2


def header(class_names: Sequence[str]) -> list[str]:
    """CSV columns: frame, time_s, p_<class>..., score, label, uncertain."""
    return ["frame", "time_s", *(f"p_{c}" for c in class_names), "score", "label", "uncertain"]


def probabilities(logits: torch.Tensor) -> np.ndarray:
    """Softmax of logits (B, K), rounded to DECIMALS: what the CSV holds and what calibration sees."""
    return torch.softmax(logits.float(), dim=1).numpy().round(DECIMALS)


def cascade(probs: np.ndarray, uncertain: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score (B,), label index (B,), uncertain (B,) bool) for probabilities (B, K); see the module docstring."""
    lo, hi = uncertain
    top = probs.argmax(axis=1)
    if probs.shape[1] != 2:
        score = probs.max(axis=1)
        return score, top, score < hi
    score = probs[:, 1]
    unsure = (score > lo) & (score < hi)
    return score, np.where(unsure, top, (score >= hi).astype(top.dtype)), unsure


def rows_for(index: np.ndarray, time_s: np.ndarray, logits: torch.Tensor, class_names: Sequence[str],
             uncertain: tuple[float, float]) -> list[list[object]]:
    """One row per frame from logits (B, K). Values go through Python lists first (.tolist()): formatting numpy
    scalars one by one took twice as long, and the Engine's process formats every frame of the job."""
    probs = probabilities(logits)
    score, label, unsure = cascade(probs, uncertain)
    fixed = f"{{:.{DECIMALS}f}}".format
    return [
        [i, f"{t:.6f}", *map(fixed, pr), fixed(s), class_names[k], int(u)]
        for i, t, pr, s, k, u in zip(index.tolist(), time_s.tolist(), probs.tolist(), score.tolist(), label.tolist(),
                                     unsure.tolist(), strict=True)
    ]
