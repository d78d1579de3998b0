"""A training run from a TrainConfig alone: zoo model, data by spec, teacher by checkpoint path."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..checkpoint import CheckpointError, load_checkpoint
from ..errors import ShapeError
from ..folded import FoldedModel
from .config import TrainConfig
from .evaluate import predict_logits
from .trainer import LAST, TrainResult, train


def teacher_logits(path: str | os.PathLike, images: torch.Tensor, *, device: str = "cpu") -> torch.Tensor:
    """Logits (N, K) of the checkpoint at `path` (e.g. the f=1 original) on uint8 images (N, C, H, W).

    The teacher uses its own normalisation; computed once, so distillation costs no teacher passes per epoch.
    """
    ck = load_checkpoint(path, input_shape=tuple(images.shape[1:]), device=device)
    return predict_logits(ck.model, images, ck.normalization, device=device)


def warm_start_from(model: FoldedModel, path: str | os.PathLike) -> dict[str, list[float]]:
    """Warm-start `model` (fold f) in place from the trained f=1 checkpoint at `path` of the same model
    (see transform.warm_start); returns that checkpoint's normalisation, which training must keep."""
    from ..transform.warm_start import warm_start

    ck = load_checkpoint(path, fold=1, input_shape=model.input_shape)
    if ck.model.num_classes != model.num_classes:
        raise CheckpointError(f"{path} has {ck.model.num_classes} classes, the model to train {model.num_classes}")
    warm_start(model, ck.model.network)
    return ck.normalization


def build_model(config: TrainConfig) -> FoldedModel:
    """The zoo model `config.model` at `config.fold`, initialised from `config.seed`."""
    torch.manual_seed(config.seed)
    return FoldedModel.from_zoo(config.model, config.fold, config.width_mult, config.align)


def train_from_config(
    config: TrainConfig, out: str | os.PathLike | None = None, model: FoldedModel | None = None
) -> TrainResult:
    """Load `config.data` (train and val splits), build the model (or take `model`), warm-start it from
    `config.init_from` (unless resuming from `out`), add the teacher, train.

    Returns the TrainResult of `train`; with `out`, checkpoints and metrics are written there.
    """
    from ..data import load_data

    train_set = load_data(config.data, "train")
    val_set = load_data(config.data, "val")
    model = build_model(config) if model is None else model
    resuming = out is not None and (Path(out) / LAST).exists()  # the saved state replaces any initialisation
    normalization = warm_start_from(model, config.init_from) if config.init_from and not resuming else None
    soft = None
    if config.distill_from:
        soft = teacher_logits(config.distill_from, train_set.images, device=config.device)
        if soft.shape[1] != model.num_classes:
            raise ShapeError(f"the teacher has {soft.shape[1]} classes, the student {model.num_classes}")
    return train(model, train_set, val_set, config, teacher_logits=soft, normalization=normalization, out=out)
