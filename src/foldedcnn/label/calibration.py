"""Calibrate the cascade's two thresholds to target error rates, as NoScope does (Kang et al., VLDB 2017).

A binary specialized model scores every frame (score = P(class 1)). With thresholds LO <= HI, a
frame scoring <= LO is called negative, >= HI positive, and one in between goes to the reference
model (see _frame_labels). On held-out labelled frames (the validation split):

    LO = the highest score such that at most max_fn of the positives score <= LO
    HI = the lowest score such that at most max_fp of the negatives score >= HI

Scores are the CSV's probabilities, on a grid of 10^-DECIMALS, so each threshold is put half a grid
step below (LO) or above (HI) the score that bounds it: no frame ever sits on a threshold. When LO
ends up above HI, every threshold in [HI, LO] meets both targets and no frame needs the reference
model; both become their midpoint. `calibrate` stores the result in the checkpoint's metadata,
where `foldedcnn run` finds it.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..checkpoint import load_checkpoint, update_metadata
from ..errors import FoldedCNNError
from ._frame_labels import DECIMALS, cascade, probabilities

HALF_STEP = 0.5 * 10.0**-DECIMALS
METADATA_KEY = "calibration"


class CalibrationError(FoldedCNNError):
    """A model or data set the cascade cannot be calibrated on, or target rates out of range."""


@dataclass(frozen=True)
class Calibration:
    """Calibrated thresholds (`low`, `high`) and what they achieved on the calibration frames.

    `fn_rate`: share of positives called negative (score <= low); `fp_rate`: share of negatives called
    positive (score >= high); `reference_share`: share of all frames sent to the reference model.
    """

    low: float
    high: float
    max_fn: float
    max_fp: float
    fn_rate: float
    fp_rate: float
    reference_share: float
    frames: int
    positives: int
    data: str = ""
    split: str = "val"

    @property
    def thresholds(self) -> tuple[float, float]:
        return self.low, self.high

    @property
    def meets_targets(self) -> bool:
        """Whether the achieved rates are within the targets (not possible when a positive scores 0 exactly
        with max_fn = 0, or a negative scores 1 with max_fp = 0)."""
        return self.fn_rate <= self.max_fn + FLOAT_NOISE and self.fp_rate <= self.max_fp + FLOAT_NOISE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        return cls(**d)


FLOAT_NOISE = 1e-9  # a rate target this close counts as met: 3 of 10 meets 0.29999999999999993 (0.1 * 3 in floats)


def _check_rate(name: str, value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise CalibrationError(f"--{name.replace('_', '-')} must be in [0, 1) (a share of frames), got {value}")
    return float(value)


def _allowed(rate: float, count: int) -> int:
    """How many of `count` frames a rate lets through (floor, forgiving float noise such as 0.07 * 100)."""
    return math.floor(rate * count + FLOAT_NOISE)


def thresholds_for(scores: np.ndarray, positive: np.ndarray, max_fn: float, max_fp: float) -> tuple[float, float]:
    """NoScope's (LO, HI) for scores (N,) on the 10^-DECIMALS grid and ground truth positive (N,) bool."""
    pos, neg = np.sort(scores[positive]), np.sort(scores[~positive])
    if pos.size == 0 or neg.size == 0:
        raise CalibrationError(f"calibration needs positive and negative frames, got {pos.size} positive and "
                               f"{neg.size} negative; use a split that holds both")
    lo = float(pos[_allowed(max_fn, pos.size)]) - HALF_STEP  # at most max_fn of positives <= lo
    hi = float(neg[neg.size - 1 - _allowed(max_fp, neg.size)]) + HALF_STEP  # at most max_fp of negatives >= hi
    if lo > hi:  # every cut in [hi, lo] meets both targets: one cut, nothing left uncertain
        lo = hi = hi + round((lo - hi) / 2, DECIMALS)
    return min(max(lo, 0.0), 1.0), min(max(hi, 0.0), 1.0)


def calibrate_scores(scores: np.ndarray, positive: np.ndarray, max_fn: float, max_fp: float, *, data: str = "",
                     split: str = "val") -> Calibration:
    """Calibrate on binary scores (N,) and ground truth (N,) bool; the rates achieved are measured by the same
    rule `foldedcnn run` applies (_frame_labels.cascade)."""
    max_fn, max_fp = _check_rate("max_fn", max_fn), _check_rate("max_fp", max_fp)
    lo, hi = thresholds_for(scores, positive, max_fn, max_fp)
    _, label, unsure = cascade(np.stack([1 - scores, scores], axis=1), (lo, hi))
    called_negative, called_positive = ~unsure & (label == 0), ~unsure & (label == 1)
    return Calibration(
        low=lo, high=hi, max_fn=max_fn, max_fp=max_fp,
        fn_rate=float(called_negative[positive].mean()), fp_rate=float(called_positive[~positive].mean()),
        reference_share=float(unsure.mean()), frames=int(scores.size), positives=int(positive.sum()),
        data=data, split=split)


def calibrate_checkpoint(checkpoint: str | os.PathLike, data: str, *, max_fn: float, max_fp: float,
                         split: str = "val", backend: str = "auto", device: str | None = None,
                         save: bool = True, trust_code: bool = False) -> Calibration:
    """Calibrate a two-class checkpoint on split `split` of data spec `data` and (by default) store the result
    under "calibration" in its metadata (weights unchanged, see checkpoint.update_metadata).

    Frames are scored through the Engine, as `foldedcnn run` scores them. Ground truth: label != 0 is positive.
    A checkpoint whose model is built by code it names (your own --module model's) loads only with `trust_code`.
    """
    from ..data import check_class_names, load_data
    from ..infer import Engine

    _check_rate("max_fn", max_fn)
    _check_rate("max_fp", max_fp)
    ckpt = load_checkpoint(checkpoint, trust_code=trust_code)
    if ckpt.model.num_classes != 2:
        raise CalibrationError(f"{checkpoint} has {ckpt.model.num_classes} classes; the cascade's two thresholds "
                               "are calibrated for a two-class (absent / present) model")
    split_data = load_data(data, split)
    if len(split_data.class_names) != 2:
        raise CalibrationError(f"{data} has {len(split_data.class_names)} classes; calibration needs the checkpoint's "
                               "two-class task")
    check_class_names(split_data.class_names, ckpt.class_names, data)
    if tuple(split_data.images.shape[1:]) != tuple(ckpt.model.input_shape):
        raise CalibrationError(f"{data} has images {tuple(split_data.images.shape[1:])}, the checkpoint expects "
                               f"{tuple(ckpt.model.input_shape)}")
    engine = Engine(ckpt.model, backend=backend, device=device)
    scores = probabilities(engine.predict(split_data.images))[:, 1]
    result = calibrate_scores(scores, split_data.labels.numpy() != 0, max_fn, max_fp, data=data, split=split)
    if save:
        update_metadata(checkpoint, {METADATA_KEY: result.to_dict()})
    return result


def stored_calibration(meta: dict[str, Any]) -> Calibration | None:
    """The calibration `calibrate_checkpoint` stored in checkpoint metadata, if any."""
    stored = meta.get(METADATA_KEY)
    return Calibration.from_dict(stored) if stored else None
