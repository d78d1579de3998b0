"""TrainConfig: every knob of a training run, as plain JSON-able data (stored in checkpoints)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import FoldedCNNError
from .schedule import SCHEDULES

# The paper trains with Adam 1e-4 (game, CIFAR) and RMSprop 1e-3 (NoScope) for hundreds of epochs.
# Our CPU budgets allow a few epochs, so Adam's default learning rate is raised to 1e-3.
DEFAULT_LR = {"adam": 1e-3, "rmsprop": 1e-3}


@dataclass
class TrainConfig:
    """A training run.

    model: zoo name, or your own model's factory "pkg.module:function" / "path/file.py:function" (returning
    the unfolded (B, C, H, W) -> (B, K) network; called with `model_kwargs`, folded by fold_model), or a
    label for a model passed to train_from_config; data: a `load_data` spec.
    batch: images per step (rounded up to a multiple of fold). optimizer "auto" is RMSprop for
    NoScope models and Adam otherwise; lr None takes DEFAULT_LR; schedule "constant" or "cosine"
    (decay to 0 over all steps). curriculum "auto" is on for
    folded models (fold > 1) with at least 10 classes; curriculum_epochs (default epochs // 2)
    is the span over which classes are admitted. distill "mse" (the paper's, on logits) or "kl"
    (softened by temperature); the loss is (1 - distill_alpha) * CE + distill_alpha * distill.
    init_from: a trained f=1 checkpoint of the same model to warm-start from (transform.warm_start).
    """

    model: str = ""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    fold: int = 1
    data: str = ""
    epochs: int = 10
    batch: int = 256
    lr: float | None = None
    schedule: str = "constant"
    optimizer: str = "auto"
    weight_decay: float = 1e-5
    seed: int = 0
    curriculum: str = "auto"
    curriculum_epochs: int | None = None
    distill_from: str | None = None
    init_from: str | None = None
    distill: str = "mse"
    distill_alpha: float = 0.5
    temperature: float = 1.0
    align: int | None = None
    width_mult: float | None = None
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise FoldedCNNError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch < 1:
            raise FoldedCNNError(f"batch must be >= 1, got {self.batch}")
        if self.optimizer not in ("auto", "adam", "rmsprop"):
            raise FoldedCNNError(f"optimizer must be auto, adam or rmsprop, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise FoldedCNNError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.curriculum not in ("auto", "on", "off"):
            raise FoldedCNNError(f"curriculum must be auto, on or off, got {self.curriculum!r}")
        if self.distill not in ("mse", "kl"):
            raise FoldedCNNError(f"distill must be mse or kl, got {self.distill!r}")
        if not 0.0 <= self.distill_alpha <= 1.0:
            raise FoldedCNNError(f"distill_alpha must be in [0, 1], got {self.distill_alpha}")
        if self.temperature <= 0:
            raise FoldedCNNError(f"temperature must be > 0, got {self.temperature}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise FoldedCNNError(f"the learning rate must be a finite number > 0, got {self.lr} (e.g. --lr 1e-3)")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise FoldedCNNError(f"weight decay must be a finite number >= 0, got {self.weight_decay} "
                                 "(e.g. --weight-decay 1e-5, or 0 for none)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of to_dict; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def resolved_optimizer(self, family: str | None) -> str:
        """"adam" or "rmsprop" for a model of zoo `family` (None for fold_model models)."""
        if self.optimizer != "auto":
            return self.optimizer
        return "rmsprop" if family == "noscope" else "adam"

    def resolved_lr(self, family: str | None) -> float:
        """The learning rate actually used."""
        return DEFAULT_LR[self.resolved_optimizer(family)] if self.lr is None else float(self.lr)

    def uses_curriculum(self, num_classes: int) -> bool:
        """Whether classes are admitted gradually for a model with `num_classes` classes."""
        if self.curriculum == "auto":
            return self.fold > 1 and num_classes >= 10
        return self.curriculum == "on"

    def batch_images(self) -> int:
        """Images per step: `batch` rounded up to a multiple of `fold`."""
        return -(-self.batch // self.fold) * self.fold
