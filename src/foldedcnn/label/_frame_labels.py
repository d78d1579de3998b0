"""Turn per-frame logits into CSV lines: probabilities, label, and the cascade's `uncertain` flag.

A frame that did not decode (damaged data) gets a row with its frame and time and every other field empty.

Binary models (NoScope's cascade): score = P(class 1). A frame with score <= LO is labelled
class 0 and one with score >= HI class 1 without further work; a frame with LO < score < HI is
uncertain, goes to the expensive reference model, and carries the model's argmax as a provisional
label. Multi-class models: score = top-1 probability, label = argmax, uncertain when score < HI.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ._chunk_store import csv_fields, csv_lines

DECIMALS = 6
_DIGITS = 10 ** DECIMALS
_WIDTH = DECIMALS + 3  # "0.123456," per probability


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


def csv_lines_for(index: np.ndarray, time_s: np.ndarray, logits: torch.Tensor, class_names: Sequence[str],
                  uncertain: tuple[float, float], decoded: np.ndarray | None = None) -> list[str]:
    """One CSV line (ending in a newline) per frame from logits (B, K): the `header` columns, as csv.writer writes
    them (tested); a frame that did not decode (`decoded` (B,) False; None: all did) gets its frame and time, the
    other fields empty (undecodable_line), whatever its logits. The probabilities and the score are formatted
    together as one array of characters: the Engine's process formats every frame of the job, and a 111-class
    model's 112 numbers formatted one by one cost ~30 us a frame, a cap of ~30k frames/s on the whole job."""
    probs = probabilities(logits)
    score, label, unsure = cascade(probs, uncertain)
    numbers = np.concatenate([probs, score[:, None]], axis=1)
    if decoded is not None:  # whatever the model made of a frame that did not decode (a zero image), it is not written
        numbers[~decoded] = 0
    if not np.isfinite(numbers).all():  # a model gone wrong: write what Python writes for nan and inf
        lines = _lines_one_by_one(index, time_s, numbers, label, unsure, class_names)
    else:
        text = _fixed_point(numbers)
        width = numbers.shape[1] * _WIDTH
        names = csv_fields(tuple(class_names))
        lines = [f"{i},{t:.6f},{text[n * width:(n + 1) * width]}{names[k]},{int(u)}\n"
                 for n, (i, t, k, u) in enumerate(zip(index.tolist(), time_s.tolist(), label.tolist(), unsure.tolist(),
                                                      strict=True))]
    for n in [] if decoded is None else np.flatnonzero(~decoded).tolist():
        lines[n] = undecodable_line(int(index[n]), float(time_s[n]), len(class_names))
    return lines


def undecodable_line(frame: int, time_s: float, classes: int) -> str:
    """The CSV line of a frame that did not decode: its frame and time, the probabilities, score, label and uncertain
    flag empty (what pandas reads as missing; a class name is never empty)."""
    return f"{frame},{time_s:.6f}{',' * (classes + 3)}\n"


def _fixed_point(numbers: np.ndarray) -> str:
    """Numbers (B, N) in [0, 1] with at most DECIMALS decimals as one string of B*N fields "0.123456," (each
    `f"{x:.6f},"`): the digits of round(x * 10**DECIMALS), computed for all fields at once."""
    units = np.rint(numbers.astype(np.float64) * _DIGITS).astype(np.int64)
    chars = np.empty((*units.shape, _WIDTH), dtype=np.uint8)
    chars[..., 0] = ord("0") + units // _DIGITS
    chars[..., 1] = ord(".")
    rest = units % _DIGITS
    for place in range(DECIMALS + 1, 1, -1):
        chars[..., place] = ord("0") + rest % 10
        rest //= 10
    chars[..., -1] = ord(",")
    return chars.tobytes().decode("ascii")


def _lines_one_by_one(index: np.ndarray, time_s: np.ndarray, numbers: np.ndarray, label: np.ndarray,
                      unsure: np.ndarray, class_names: Sequence[str]) -> list[str]:
    """csv_lines_for's lines with each number formatted by Python (any float: nan, inf)."""
    fixed = f"{{:.{DECIMALS}f}}".format
    return [csv_lines([[i, f"{t:.6f}", *map(fixed, nums), class_names[k], int(u)]])
            for i, t, nums, k, u in zip(index.tolist(), time_s.tolist(), numbers.tolist(), label.tolist(),
                                        unsure.tolist(), strict=True)]
