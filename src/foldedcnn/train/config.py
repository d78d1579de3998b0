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
# Fine-tuning a warm-started model (init_from) scales that rate by how much of the original's validation top-1 the
# warm start lost (lost = 1 - warm start's / original's, both on the run's validation split before training):
# scale = FINETUNE_LR_SLOPE * lost, clipped to [FINETUNE_LR_SCALE, 1], after a warm-up, with cosine decay. Why
# (benchmarks/results/finetune_sweep-no-refit.md, the plain block-copy warm start):
# - A warm start that kept little has to relearn and needs the full rate: game-apex f=4 starts at 8.3 % val of the
#   original's 88.3 % (lost 0.91) and reaches 76.1 % val after 8 epochs at 1e-3, 74.3 % at 3e-4, 64.4 % at 3e-3;
#   f=2 starts at 39.6 % (lost 0.55): 86.6 % at 1e-3, 85.6 % at 3e-4.
# - A warm start that kept (nearly) everything only loses by a high rate: vtest f=4 (97.5 % val, above its original's
#   96.2 %) drops to 94.3 % after one epoch at 3e-4 (a one-epoch run's warm-up is only 7 steps) and keeps 96.9 % at
#   1e-4 (tests/test_train_finetune); at 1e-3 even a full warm-up ends at 94-95 %.
# - The warm-up is needed at any rate: RMSprop's running average of squared gradients starts at zero, so its first
#   steps are up to 10x the rate (vtest f=4: 98.1 -> 71.7 % val after one epoch at 1e-3 without it).
# Where the loss is unknown (train() without the original's top-1) the scale is FINETUNE_LR_SCALE.
FINETUNE_LR_SCALE = 0.1  # the least scale: a warm start that kept 95 % of the original's top-1 or more
FINETUNE_LR_SLOPE = 2.0  # a warm start that lost half of the original's top-1 or more gets the full rate
# After a narrow stage (narrow_epochs) the folded model starts from the trained narrow network and the fine-tune only
# polishes: game-apex f=4 from its narrow network's 84.9 % val, one epoch at 3e-4 drops it to 78.3 %, at 1e-4 to
# 83.4 %, at 3e-5 to 84.5 %; after 8 epochs 83.8 %, 84.6 % and 84.8 % (best 85.0 %) (benchmarks/narrow_polish.py).
FINETUNE_AFTER_NARROW_SCALE = 0.03
# The narrow stage (a fold-1 run of the narrow network, narrow_stage=True) takes NARROW_LR_MULT times the fine-tune
# rate above: on the CPU game tasks at f = 4 both the narrow networks and the controls rise with the rate up to 5e-3
# (16 epochs of 6,000 fresh images are short for every model), the narrow networks far more (game-apex 83.90 ->
# 88.70 % test from 1e-3 to 5e-3, game-sot 80.35 -> 84.00; the controls 90.20 -> 91.30, 85.40 -> 85.90:
# benchmarks/results/finetune_sweep-narrow.md). The folded model after it keeps FINETUNE_AFTER_NARROW_SCALE of the
# default rate: at 0.03x the narrow stage's 5e-3, one folded epoch dropped a small game-apex f = 2 run by 1.6 points
# (tests/test_train_finetune.py).
NARROW_LR_MULT = 5.0
FINETUNE_WARMUP_STEPS = 100  # RMSprop's running average of squared gradients (alpha 0.99) settles in ~100 steps


def finetune_lr_scale(kept: float | None) -> float:
    """Scale of the default learning rate for fine-tuning a warm start that `kept` this share of the original's
    validation top-1 (warm start's / original's): FINETUNE_LR_SLOPE * (1 - kept) within [FINETUNE_LR_SCALE, 1];
    FINETUNE_LR_SCALE when `kept` is None (unknown). See the comment at FINETUNE_LR_SCALE for the measurements."""
    if kept is None:
        return FINETUNE_LR_SCALE
    return min(1.0, max(FINETUNE_LR_SCALE, FINETUNE_LR_SLOPE * (1.0 - kept)))


@dataclass
class TrainConfig:
    """A training run.

    model: zoo name, or your own model's factory "pkg.module:function" / "path/file.py:function" (returning
    the unfolded (B, C, H, W) -> (B, K) network; called with `model_kwargs`, folded by fold_model), or a
    label for a model passed to train_from_config; data: a `load_data` spec.
    batch: images per step (rounded up to a multiple of fold). optimizer "auto" is RMSprop for
    NoScope models and Adam otherwise; schedule "constant" or "cosine" (decay to 0 over all steps), after
    `warmup` epochs of linear warm-up from 0. curriculum "auto" is on for folded models (fold > 1) with at
    least 10 classes trained from scratch; curriculum_epochs (default epochs // 2) is the span over which
    classes are admitted. distill "mse" (the paper's, on logits) or "kl" (softened by temperature); the
    loss is (1 - distill_alpha) * CE + distill_alpha * distill.
    init_from: a trained f=1 checkpoint of the same model to warm-start from (transform.warm_start), its blocks
    refitted by least squares to the original's layer outputs on the first `refit_images` training images (0:
    the plain block copy; on the CPU game tasks the refit lifts a f = 4 warm start from 8-28 % to 65-67 % val
    top-1 before any training, f = 2 from 54-74 % to within 0.6 points of the original; the fine-tune rate
    below still follows what the plain copy kept, see train's copy_top1). With it
    the defaults become a fine-tune: lr None is DEFAULT_LR scaled by how much the warm start lost (finetune_lr_scale:
    FINETUNE_LR_SCALE for a warm start as good as the original, 1 for one that lost half; for the folded model
    after a narrow stage FINETUNE_AFTER_NARROW_SCALE), schedule "auto" is cosine,
    warmup None is one epoch or FINETUNE_WARMUP_STEPS steps, whichever is longer, and the curriculum stays
    off (it would mask classes the warm-started model already knows). Without it: DEFAULT_LR, "constant", no warm-up.
    narrow_epochs: with init_from at fold > 1, train first the narrow network (transform.narrow_model: one
    image's block, the original with every hidden width cut to the folded width // fold, at fold 1; its run has
    block_of = fold, see models.widths) for that many epochs,
    warm-started and refitted from init_from with the same distillation, then copy it into every image's block
    (transform.fill_blocks: the folded model starts out computing it exactly on every image) and fine-tune the
    folded model for `epochs`; None: as many as `epochs`, 0: fine-tune the folded warm start directly. The
    narrow stage's run (narrow_stage=True) takes NARROW_LR_MULT times the fine-tune rate, or an explicit `lr`;
    the folded model then FINETUNE_AFTER_NARROW_SCALE times the default rate. Why a narrow stage: in the
    folded network each block's weights see only the images at its position, and the zero weights between
    blocks, moved by Adam at the rate of the others, mix the images; on the CPU game tasks a folded f = 4 warm
    start lost 12-19 points in its first epoch and was still 8-14 points short after 16, while the narrow
    network, one set of weights seeing every image at 1/f of the hidden-layer FLOPs, gains from its first
    epoch (benchmarks/results/accuracy.md).
    fresh_data: draw new training images every epoch (generated data only: load_data(..., draw=epoch)),
    in `data_workers` processes ahead of training; validation and test stay fixed.
    align, width_mult, block_of, min_block: the width rule of the model built from `model` (models.widths).
    """

    model: str = ""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    fold: int = 1
    data: str = ""
    epochs: int = 10
    batch: int = 256
    lr: float | None = None
    schedule: str = "auto"
    warmup: float | None = None
    optimizer: str = "auto"
    weight_decay: float = 1e-5
    seed: int = 0
    curriculum: str = "auto"
    curriculum_epochs: int | None = None
    distill_from: str | None = None
    init_from: str | None = None
    refit_images: int = 1024
    narrow_epochs: int | None = None
    narrow_stage: bool = False
    distill: str = "mse"
    distill_alpha: float = 0.5
    temperature: float = 1.0
    align: int | None = None
    width_mult: float | None = None
    block_of: int = 1
    min_block: int | None = None
    fresh_data: bool = False
    data_workers: int = 1
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise FoldedCNNError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch < 1:
            raise FoldedCNNError(f"batch must be >= 1, got {self.batch}")
        if self.narrow_epochs is not None and self.narrow_epochs < 0:
            raise FoldedCNNError(f"narrow_epochs must be >= 0 (0: no narrow stage), got {self.narrow_epochs}")
        if self.narrow_stage and (not self.init_from or self.fold != 1):
            raise FoldedCNNError("narrow_stage marks the fold-1 narrow network's run of a warm start (set by the "
                                 "narrow stage itself): it needs fold 1 and init_from")
        if self.narrow_epochs and (not self.init_from or self.fold < 2):
            raise FoldedCNNError("a narrow stage (narrow_epochs > 0) trains one image's block of a folded model "
                                 "warm-started from the original: it needs fold > 1 and init_from; leave it unset")
        if self.refit_images < 0:
            raise FoldedCNNError(f"refit_images must be >= 0 (0: no refit), got {self.refit_images}")
        if self.optimizer not in ("auto", "adam", "rmsprop"):
            raise FoldedCNNError(f"optimizer must be auto, adam or rmsprop, got {self.optimizer!r}")
        if self.schedule not in ("auto", *SCHEDULES):
            raise FoldedCNNError(f"schedule must be one of auto, {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.warmup is not None and not 0 <= self.warmup <= self.epochs:
            raise FoldedCNNError(f"warmup must be in [0, epochs={self.epochs}] epochs, got {self.warmup}")
        if self.curriculum not in ("auto", "on", "off"):
            raise FoldedCNNError(f"curriculum must be auto, on or off, got {self.curriculum!r}")
        if self.curriculum == "on" and self.init_from:
            raise FoldedCNNError("curriculum on with init_from: the curriculum would mask classes the warm-started "
                                 "model already knows; leave it auto (off for warm starts) or off")
        if self.data_workers < 1:
            raise FoldedCNNError(f"data_workers must be >= 1, got {self.data_workers}")
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

    def resolved_lr(self, family: str | None, kept: float | None = None) -> float:
        """The base learning rate actually used: `lr`, else the optimizer's DEFAULT_LR, scaled for a warm-started
        fine-tune by finetune_lr_scale(kept), `kept` being the warm start's validation top-1 over the original's,
        and by NARROW_LR_MULT for a narrow stage. After a narrow stage (whose rate an explicit `lr` sets),
        DEFAULT_LR x FINETUNE_AFTER_NARROW_SCALE."""
        default = DEFAULT_LR[self.resolved_optimizer(family)]
        if self.resolved_narrow_epochs():  # the folded model after its narrow stage (which ran at `lr`, if given)
            return default * FINETUNE_AFTER_NARROW_SCALE
        if self.lr is not None:
            return float(self.lr)
        if not self.init_from:
            return default
        return default * finetune_lr_scale(kept) * (NARROW_LR_MULT if self.narrow_stage else 1.0)

    def resolved_schedule(self) -> str:
        """"constant" or "cosine": "auto" is cosine for a warm-started fine-tune, constant otherwise."""
        if self.schedule != "auto":
            return self.schedule
        return "cosine" if self.init_from else "constant"

    def resolved_warmup(self, steps_per_epoch: int) -> float:
        """Epochs of linear learning-rate warm-up: for a warm start one epoch or FINETUNE_WARMUP_STEPS steps of
        `steps_per_epoch`, whichever is longer, at most half the run; none otherwise."""
        if self.warmup is not None:
            return float(self.warmup)
        if not self.init_from:
            return 0.0
        return min(max(1.0, FINETUNE_WARMUP_STEPS / max(1, steps_per_epoch)), self.epochs / 2)

    def resolved_narrow_epochs(self) -> int:
        """Epochs of the narrow stage: `narrow_epochs`, by default as many as `epochs` for a warm start at fold > 1;
        0 otherwise."""
        if not self.init_from or self.fold < 2:
            return 0
        return self.epochs if self.narrow_epochs is None else self.narrow_epochs

    def uses_curriculum(self, num_classes: int) -> bool:
        """Whether classes are admitted gradually for a model with `num_classes` classes (never for a warm start)."""
        if self.curriculum == "auto":
            return self.fold > 1 and num_classes >= 10 and not self.init_from
        return self.curriculum == "on"

    def batch_images(self) -> int:
        """Images per step: `batch` rounded up to a multiple of `fold`."""
        return -(-self.batch // self.fold) * self.fold
