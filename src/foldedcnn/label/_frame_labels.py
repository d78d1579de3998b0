"""Turn per-frame logits into CSV rows: probabilities, label, and the cascade's `uncertain` flag.

Binary models: score = P(class 1); a frame is uncertain when LO < score < HI, so the cascade
sends it to the expensive reference model. Multi-class models: score = top-1 probability and a
frame is uncertain when score < HI.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

DECIMALS = 6


def header(class_names: Sequence[str]) -> list[str]:
    """CSV columns: frame, time_s, p_<class>..., score, label, uncertain."""
    return ["frame", "time_s", *(f"p_{c}" for c in class_names), "score", "label", "uncertain"]


def rows_for(index: np.ndarray, time_s: np.ndarray, logits: torch.Tensor, class_names: Sequence[str],
             uncertain: tuple[float, float]) -> list[list[object]]:
    """One row per frame from logits (B, K)."""
    probs = torch.softmax(logits.float(), dim=1).numpy().round(DECIMALS)
    top = probs.argmax(axis=1)
    lo, hi = uncertain
    if probs.shape[1] == 2:
        score = probs[:, 1]
        unsure = (score > lo) & (score < hi)
    else:
        score = probs.max(axis=1)
        unsure = score < hi
    return [
        [int(i), f"{t:.6f}", *(f"{p:.{DECIMALS}f}" for p in pr), f"{s:.{DECIMALS}f}", class_names[k], int(u)]
        for i, t, pr, s, k, u in zip(index, time_s, probs, score, top, unsure, strict=True)
    ]
