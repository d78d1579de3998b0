"""A training run from a TrainConfig alone: zoo model or factory, data by spec, teacher by checkpoint path."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import torch

from ..checkpoint import CheckpointError, load_checkpoint, read_metadata
from ..device import resolve_device
from ..folded import FoldedModel
from ..transform import ModelRef
from ._fresh import FreshDraws
from .config import TrainConfig
from .evaluation import predict_logits
from .normalization import normalize
from .trainer import LAST, ImageSet, TrainResult, train


def load_teacher(path: str | os.PathLike, input_shape: tuple[int, int, int], *, device: str = "cpu",
                 trust_code: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """The checkpoint at `path` (e.g. the f=1 original) as a function: uint8 images (N, C, H, W) -> logits (N, K).

    The teacher uses its own normalisation. `trust_code` is load_checkpoint's (a checkpoint of your own model
    names the code that builds it).
    """
    ck = load_checkpoint(path, input_shape=input_shape, device=device, trust_code=trust_code)
    return lambda images: predict_logits(ck.model, images, ck.normalization, device=device)


def teacher_logits(path: str | os.PathLike, images: torch.Tensor, *, device: str = "cpu",
                   trust_code: bool = False) -> torch.Tensor:
    """Logits (N, K) of the checkpoint at `path` on uint8 images (N, C, H, W); computed once, so distillation
    on a fixed train set costs no teacher passes per epoch. `trust_code` is load_checkpoint's."""
    return load_teacher(path, tuple(images.shape[1:]), device=device, trust_code=trust_code)(images)


def top1_of(logits: Callable[[torch.Tensor], torch.Tensor], data: ImageSet) -> float:
    """Top-1 (%) of `logits` (uint8 images (N, C, H, W) -> (N, K), e.g. load_teacher's) on a labelled split."""
    return 100.0 * float((logits(data.images).argmax(dim=1) == data.labels).float().mean())


def warm_start_from(model: FoldedModel, path: str | os.PathLike, trust_code: bool = False,
                    calibration: torch.Tensor | None = None, val_set: ImageSet | None = None
                    ) -> tuple[dict[str, list[float]], float | None]:
    """Warm-start `model` (fold f) in place from the trained f=1 checkpoint at `path` of the same model
    (see transform.warm_start), refitting its blocks on `calibration` uint8 images (N, C, H, W) when given.
    Returns that checkpoint's normalisation, which training must keep, and, with `calibration` and `val_set`,
    the plain block copy's validation top-1 measured before the refit (train's copy_top1), else None.
    `trust_code` is load_checkpoint's."""
    from ..transform._warm_start import refit_warm_start, warm_start

    ck = load_checkpoint(path, fold=1, input_shape=model.input_shape, trust_code=trust_code)
    if ck.model.num_classes != model.num_classes:
        raise CheckpointError(f"{path} has {ck.model.num_classes} classes, the model to train {model.num_classes}")
    warm_start(model, ck.model.network)
    if calibration is None:
        return ck.normalization, None
    copy_top1 = (top1_of(lambda images: predict_logits(model, images, ck.normalization), val_set)  # model on CPU
                 if val_set is not None else None)
    refit_warm_start(model, ck.model.network, normalize(calibration, ck.normalization))
    return ck.normalization, copy_top1


def build_model(config: TrainConfig, input_shape: tuple[int, int, int] | None = None) -> FoldedModel:
    """`config.model` at `config.fold`, initialised from `config.seed`: a zoo model, or a factory
    ("pkg.module:function" or "file.py:function", called with `config.model_kwargs`) folded by fold_model
    for images of `input_shape` (C, H, W)."""
    torch.manual_seed(config.seed)
    return ModelRef(config.model, input_shape, config.model_kwargs).build(config.fold, config.width_mult, config.align,
                                                                      config.block_of, config.min_block)


def train_from_config(
    config: TrainConfig,
    out: str | os.PathLike | None = None,
    model: FoldedModel | None = None,
    *,
    train_set: ImageSet | None = None,
    val_set: ImageSet | None = None,
    teacher: torch.Tensor | None = None,
    trust_code: bool = False,
) -> TrainResult:
    """Train as `config` says: load `config.data` (or take `train_set`/`val_set`), build the zoo model (or
    take `model`), warm-start it from `config.init_from` (unless resuming from `out`), distill toward
    `config.distill_from`'s logits (or `teacher`, (N, K), when the caller already computed them for
    `train_set`), train; a warm start's learning rate follows how much of `config.init_from`'s validation top-1
    it kept. A warm start at fold > 1 first trains its narrow network (config.narrow_epochs, in <out>/narrow),
    copies it into every image's block and fine-tunes from there. With `config.fresh_data`, epochs after the
    first train on new images of the generated `config.data` (FreshDraws; the folded stage after the narrow
    one's), distilled toward `config.distill_from` run on them.

    `trust_code` allows `init_from` / `distill_from` checkpoints whose model is built by code they name (your
    own model's). Returns the TrainResult of `train`; with `out`, checkpoints and metrics are written there.
    """
    from ..data import DataError, check_class_names, is_generated, load_data

    resolve_device(config.device)  # fail before loading anything
    if config.fresh_data and not is_generated(config.data):
        raise DataError(f"fresh data every epoch needs a generated data spec (game-*), not {config.data!r}")
    train_set = load_data(config.data, "train") if train_set is None else train_set
    val_set = load_data(config.data, "val") if val_set is None else val_set
    named = model is None  # built from config.model: code the user named, trusted like it
    model = build_model(config, tuple(train_set.images.shape[1:])) if model is None else model
    resuming = out is not None and (Path(out) / LAST).exists()  # the saved state replaces any initialisation
    for path in (config.init_from, config.distill_from) if not resuming else ():  # their logits index the labels
        if path:
            check_class_names(train_set.class_names, read_metadata(path)["class_names"], config.data)
    teach = (load_teacher(config.distill_from, model.input_shape, device=config.device, trust_code=trust_code)
             if config.distill_from else None)
    if teach is not None and teacher is None:
        teacher = teach(train_set.images)
    normalization, copy_top1 = None, None  # the plain copy's top-1 sets the fine-tune rate of a refitted one
    narrow = config.resolved_narrow_epochs()
    if narrow and not resuming:
        normalization = _narrow_stage(config, out, model, train_set, val_set, teacher, trust_code, named)
    elif config.init_from and not resuming:
        calibration = train_set.images[: config.refit_images] if config.refit_images else None
        normalization, copy_top1 = warm_start_from(model, config.init_from, trust_code, calibration, val_set)
    # the original's top-1 sets a warm start's rate (a resumed run has it in its saved state; after a narrow stage
    # the rate is fixed, and the stage measured it for its own)
    original = config.init_from and not resuming and not narrow and (
        teach if config.distill_from == config.init_from else
        load_teacher(config.init_from, model.input_shape, device=config.device, trust_code=trust_code))
    original_top1 = top1_of(original, val_set) if original else None
    with (FreshDraws(config.data, config.epochs, config.data_workers, offset=narrow) if config.fresh_data
          else nullcontext()) as draws:
        return train(model, train_set, val_set, config, teacher_logits=teacher if teach else None,
                     normalization=normalization, out=out, draws=draws, teacher=teach, original_top1=original_top1,
                     copy_top1=copy_top1)


NARROW = "narrow"  # the narrow stage's run directory, inside the folded run's


def _epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def narrow_history(out: str | os.PathLike) -> list[dict]:
    """Per-epoch metrics (metrics.json rows) of the narrow stage of the run in `out`, row 0 its warm start; [] for a
    run without one."""
    path = Path(out) / NARROW / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _narrow_stage(config: TrainConfig, out: str | os.PathLike | None, model: FoldedModel, train_set: ImageSet,
                  val_set: ImageSet, teacher: torch.Tensor | None, trust_code: bool, named: bool
                  ) -> dict[str, list[float]]:
    """The narrow stage of `config` (see TrainConfig.narrow_epochs): train `model`'s narrow network, warm-started
    from config.init_from, as a fold-1 run in <out>/narrow (resumable like any run), then fill every image's block
    of `model` with its best checkpoint (its last weights without `out`). Returns the original's normalisation.
    `named`: `model` was built from config.model, so the code that rebuilds its narrow network is trusted."""
    from ..transform import fill_blocks, narrow_model, narrow_widths

    trust = trust_code or named
    torch.manual_seed(config.seed)
    narrow = narrow_model(model, trust)
    mult, align, block_of, min_block = narrow_widths(model)
    stage = replace(config, fold=1, width_mult=mult, align=align, block_of=block_of, min_block=min_block,
                    epochs=config.resolved_narrow_epochs(), narrow_epochs=None, narrow_stage=True)
    print(f"narrow stage: {_epochs(stage.epochs)} of one image's block at fold 1 (every hidden width the folded "
          f"one // {block_of}), then {_epochs(config.epochs)} of the folded model", flush=True)
    stage_out = None if out is None else Path(out) / NARROW
    result = train_from_config(stage, stage_out, narrow, train_set=train_set, val_set=val_set, teacher=teacher,
                               trust_code=trust_code)
    best = (load_checkpoint(result.best_path, fold=1, input_shape=model.input_shape, trust_code=trust).model
            if result.best_path is not None else result.model)
    ck = load_checkpoint(config.init_from, fold=1, input_shape=model.input_shape, trust_code=trust_code)
    fill_blocks(model, best.to("cpu"), ck.model.network)
    return ck.normalization
