"""The training loop: fold-mixed batches, curriculum, distillation, best/last checkpoints, resume.

Epoch 0 is the model as given (e.g. warm-started): it is evaluated and is the first best checkpoint,
so training can only improve on it. Every epoch ends with, in order: metrics.csv/metrics.json,
`best.safetensors` (when validation top-1 improved) and `last.safetensors` (the resumable state; its
replacement commits the epoch). A run started again with the same `out` and config resumes after the
last committed epoch and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from ..checkpoint import CheckpointError, architecture_of, save_checkpoint
from ..device import fast_layout, resolve_device
from ..errors import FoldedCNNError, FoldError, ShapeError
from ..folded import FoldedModel
from ..fsio import atomic_write_text
from ._state import load_optimizer, load_state, optimizer_tensors, save_state
from .config import TrainConfig
from .curriculum import Curriculum
from .evaluation import check_labels, evaluate
from .losses import classification_loss, distillation_loss, mask_inactive
from .normalization import compute_normalization, normalizer
from .schedule import learning_rate

BEST = "best.safetensors"
LAST = "last.safetensors"
# fields that may differ between an interrupted run and its resumption
_RESUME_FREE = ("progress", "data_workers")
CHECK_STEPS = 25  # steps between two reads of the losses from the device: the divergence check, the progress bar


class ImageSet(Protocol):
    """A labelled split, as returned by foldedcnn.data.load_data."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    class_names: list[str]


@dataclass
class TrainResult:
    """The final model (last epoch's weights), per-epoch metrics and where the best checkpoint is."""

    model: FoldedModel
    history: list[dict[str, Any]]
    normalization: dict[str, list[float]]
    best_path: Path | None
    best_val_top1: float
    seconds: float
    lr: float  # the base learning rate (config.resolved_lr)


def zoo_family(model: FoldedModel) -> str | None:
    """The zoo family of `model` ("noscope", "game", "resnet"), or None for a fold_model model."""
    name = model.identity.zoo
    if name is None:
        return None
    from ..models import get_spec

    return get_spec(name).family


def make_optimizer(model: FoldedModel, config: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """Adam (game, CIFAR, fold_model models) or RMSprop (NoScope), as in the paper, at learning rate `lr`.

    On CUDA Adam is the fused kernel: one launch per step for all parameters, and it takes the GradScaler's
    inf check on the device, so a mixed-precision step never waits for the GPU (the unfused step reads the
    check back with .item())."""
    family = zoo_family(model)
    if config.resolved_optimizer(family) == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    fused = all(p.is_cuda for p in model.parameters())
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=config.weight_decay, fused=fused or None)


def check_compatible(model: FoldedModel, data: ImageSet, config: TrainConfig, what: str) -> None:
    """Raise ShapeError/FoldError unless `data` fits `model` and `config`."""
    if model.fold != config.fold:
        raise FoldError(f"the model is folded by {model.fold} but the config says fold={config.fold}")
    shape = tuple(data.images.shape[1:])
    if data.images.dim() != 4 or shape != model.input_shape:
        raise ShapeError(f"{what} images are {shape}, the model takes {model.input_shape}; pick data of that size")
    if data.images.dtype != torch.uint8:
        raise ShapeError(f"{what} images must be uint8, got {data.images.dtype}")
    if len(data.class_names) != model.num_classes:
        raise ShapeError(f"{what} data has {len(data.class_names)} classes, the model has {model.num_classes}")
    check_labels(data.labels, model.num_classes, what)


class TrainingDivergedError(FoldedCNNError):
    """A non-finite loss or weight: training stops before anything broken is saved."""


def check_finite_loss(loss: float, epoch: int, step: int, lr: float) -> None:
    """Raise TrainingDivergedError for a NaN or infinite loss, naming where and the fix."""
    if not math.isfinite(loss):
        raise TrainingDivergedError(
            f"training diverged in epoch {epoch + 1}, step {step + 1}: the loss is {loss}; nothing of this epoch is "
            f"saved; lower the learning rate (now {lr:g}) and train into a new --out")


def check_finite_model(model: FoldedModel, epoch: int) -> None:
    """Raise TrainingDivergedError if any weight of `model` is NaN or infinite after epoch `epoch`."""
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise TrainingDivergedError(f"training diverged in epoch {epoch + 1}: weights became NaN or infinite; "
                                    "nothing of this epoch is saved; lower the learning rate and train into a new "
                                    "--out")


@contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """torch.use_deterministic_algorithms(True) (warn-only) for the duration, then the previous setting."""
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


def _write_metrics(out: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(out / "metrics.json", json.dumps(history, indent=1))
    table = io.StringIO()
    if history:
        writer = csv.DictWriter(table, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write_text(out / "metrics.csv", table.getvalue())


def epoch_order(labels: torch.Tensor, active: torch.Tensor, fold: int, seed: int, epoch: int) -> torch.Tensor:
    """Image indices of one epoch: fold-mixing order of all (N,) `labels`, minus images of inactive classes."""
    from ..data import fold_mixing_order

    order = fold_mixing_order(labels.numel(), fold, seed, epoch)
    return order[active[labels[order]]]


def _check_widths(weights: dict[str, torch.Tensor], model: FoldedModel, path: Path) -> None:
    """Raise CheckpointError, naming the fix, when the saved `weights` have other shapes than `model`'s: a run saved
    under another width rule (before min_block, models.widths) with a config that reads the same."""
    mine = model.network.state_dict()
    wrong = next((k for k, v in weights.items() if k in mine and mine[k].shape != v.shape), None)
    if wrong is not None:
        raise CheckpointError(f"{path} holds a network of other widths than this run builds ({wrong}: "
                              f"{tuple(weights[wrong].shape)} saved, {tuple(mine[wrong].shape)} now): it was saved "
                              "under an earlier width rule (folded game models gained channels in their last conv, "
                              "min_block); start the run again in a new --out directory")


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The fields that must match to resume; fields a run saved before they existed take their defaults."""
    full = {**TrainConfig().to_dict(), **config}
    return {k: v for k, v in full.items() if k not in _RESUME_FREE}


def _train_epoch(
    model: FoldedModel,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    data: ImageSet,
    order: torch.Tensor,
    active: torch.Tensor | None,
    normalization: dict[str, list[float]],
    teacher_logits: torch.Tensor | None,
    config: TrainConfig,
    epoch: int,
    base_lr: float,
) -> tuple[float, float]:
    """One pass over `order` (image indices) in batches, epoch `epoch` (from 0); returns mean loss and
    top-1 (percent). Each step's learning rate follows the config's schedule and warm-up from `base_lr`.
    The epoch's images (and teacher logits) move to the device once, so batches are gathered there.

    Losses and hits stay on the device, read every CHECK_STEPS steps (and at the end) to stop at a non-finite
    loss, naming its first such step, and to update the progress bar: the host queues step after step
    without waiting for a GPU in between. A diverged run thus stops at most CHECK_STEPS steps late, before
    anything of the epoch is saved."""
    device = torch.device(config.device)
    cuda = device.type == "cuda"
    model.train()
    step = config.batch_images()
    norm = normalizer(normalization, device)
    active = None if active is None else active.to(device)
    images, labels = data.images.to(device, non_blocking=True), data.labels.to(device, non_blocking=True)
    teacher_logits = None if teacher_logits is None else teacher_logits.to(device, non_blocking=True)
    order = order.to(device)
    schedule = config.resolved_schedule()
    warmup = config.resolved_warmup(-(-data.labels.numel() // step)) / config.epochs
    desc = f"epoch {epoch + 1}/{config.epochs}"
    starts = range(0, order.numel(), step)
    sizes = torch.tensor([min(step, order.numel() - s) for s in starts], dtype=torch.float64, device=device)
    losses = torch.zeros(len(starts), device=device)  # each step's mean loss
    hits = torch.zeros((), dtype=torch.long, device=device)
    rates: list[float] = []
    bar = tqdm(starts, desc=desc, disable=not config.progress, leave=False, mininterval=0.5)
    for i, start in enumerate(bar):
        idx = order[start : start + step]
        x = norm(images[idx])
        y = labels[idx]
        lr = learning_rate(base_lr, schedule, (epoch + start / order.numel()) / config.epochs, warmup)
        rates.append(lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=cuda):
            logits = model(x).float()
            loss = classification_loss(logits, y, active)
            if teacher_logits is not None:
                teacher = teacher_logits[idx]
                soft = distillation_loss(logits, teacher, config.distill, config.temperature, active)
                loss = (1.0 - config.distill_alpha) * loss + config.distill_alpha * soft
        losses[i] = loss.detach()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        hits += (mask_inactive(logits.detach(), active).argmax(dim=1) == y).sum()
        if (i + 1) % CHECK_STEPS == 0:  # reads the device: not every step
            _check_losses(losses, i + 1 - CHECK_STEPS, i + 1, epoch, rates)
            if config.progress:
                seen = min((i + 1) * step, order.numel())
                bar.set_postfix(loss=f"{float((losses[: i + 1] * sizes[: i + 1]).sum()) / seen:.4f}",
                                acc=f"{100.0 * int(hits) / seen:.2f}", refresh=False)
    bar.close()
    _check_losses(losses, len(starts) // CHECK_STEPS * CHECK_STEPS, len(starts), epoch, rates)
    seen = max(1, order.numel())
    return float((losses * sizes).sum()) / seen, 100.0 * int(hits) / seen


def _check_losses(losses: torch.Tensor, start: int, stop: int, epoch: int, rates: list[float]) -> None:
    """check_finite_loss for the first non-finite of step losses [start, stop) (of (N,)) of epoch `epoch`; the
    steps before `start` were checked already."""
    bad = torch.nonzero(~torch.isfinite(losses[start:stop])).flatten()
    if bad.numel():
        first = start + int(bad[0])
        check_finite_loss(float(losses[first]), epoch, first, rates[first])


def _check_teacher(teacher_logits: torch.Tensor, data: ImageSet, num_classes: int) -> None:
    if tuple(teacher_logits.shape) != (data.labels.numel(), num_classes):
        raise ShapeError(f"teacher logits are {tuple(teacher_logits.shape)}, expected "
                         f"({data.labels.numel()}, {num_classes}): one row per train image, one column per "
                         "class of the student")


def train(
    model: FoldedModel,
    train_set: ImageSet,
    val_set: ImageSet,
    config: TrainConfig,
    *,
    teacher_logits: torch.Tensor | None = None,
    normalization: dict[str, list[float]] | None = None,
    out: str | os.PathLike | None = None,
    draws: Callable[[int], ImageSet] | None = None,
    teacher: Callable[[torch.Tensor], torch.Tensor] | None = None,
    original_top1: float | None = None,
    copy_top1: float | None = None,
) -> TrainResult:
    """Train `model` (any FoldedModel: zoo or fold_model) on uint8 images (N, C, H, W) with labels (N,).

    Batches hold `config.batch_images()` images in fold-mixing order (foldedcnn.data.fold_mixing_order,
    reseeded per epoch); the loss is CE on the unfolded (B, K) logits over active curriculum classes,
    plus distillation toward `teacher_logits` (N, K) when given. Normalisation is `normalization`
    (a warm start passes its original's) or else the train split's per-channel statistics; it is stored on
    the model's identity with the class names, so `Engine(result.model)` feeds it right. The first epoch
    trains on `train_set`; with `draws`, epoch e >= 1 (0-based) trains on `draws(e)` instead (fresh images;
    a pure function of e, so a resumed run sees the same ones), distilled toward `teacher(images)`
    ((N, C, H, W) uint8 -> (N, K)) when `teacher_logits` is given. History row 0 (and the first best
    checkpoint) is the model as given. With `out`, writes metrics, best.safetensors and last.safetensors
    there, and resumes from last.safetensors when it exists (its config must equal `config`).
    `original_top1`: for a warm start (config.init_from), the original's validation top-1 on `val_set`; with
    it the default learning rate follows how much of it the model as given kept (TrainConfig.resolved_lr), or,
    with `copy_top1` (a refitted warm start: the plain block copy's validation top-1), how much the copy kept:
    the refit moves the start closer, not the folded network's optimum. A resumed run takes both, and the base
    rate they gave, from its saved state (so a change of the library's defaults never changes a run midway).
    """
    check_compatible(model, train_set, config, "train")
    check_compatible(model, val_set, config, "validation")
    if out is not None:
        try:
            architecture_of(model)  # before any work: every checkpoint written to `out` must load again
        except CheckpointError as exc:
            raise CheckpointError(f"train(out=...) saves checkpoints, and {exc}; or train with out=None") from None
    if teacher_logits is not None:
        _check_teacher(teacher_logits, train_set, model.num_classes)
        if draws is not None and teacher is None:
            raise ShapeError("fresh training images (draws) with distillation need `teacher`, the function that "
                             "computes the teacher's logits of each epoch's images")
    device = resolve_device(config.device)
    fast_layout(model.to(device), device)  # before the optimizer, whose state takes the weights' layout
    num_classes = model.num_classes
    if config.uses_curriculum(num_classes):
        span = config.curriculum_epochs if config.curriculum_epochs is not None else config.epochs // 2
        curriculum = Curriculum.build(num_classes, config.fold, span, config.seed)
    else:
        curriculum = Curriculum.all_classes(num_classes)
    normalization = None if normalization is None else dict(normalization)
    optimizer = make_optimizer(model, config, config.resolved_lr(zoo_family(model)))  # rate set again per step
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    torch.manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    best, best_path, start_epoch, elapsed, saved_lr = -1.0, None, 0, 0.0, None
    out_dir = Path(out) if out is not None else None
    resumed = False
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        if (out_dir / LAST).exists():
            state = load_state(out_dir / LAST)
            then, now = _comparable(state.meta["config"]), _comparable(config.to_dict())
            if then != now:
                changed = ", ".join(f"{k} {then.get(k)!r} -> {now.get(k)!r}" for k in sorted(then.keys() | now.keys())
                                    if then.get(k) != now.get(k))
                raise CheckpointError(f"{out_dir / LAST} belongs to a run with another config ({changed}); rerun with "
                                      "its settings to resume it, or use a new --out directory (with --init-from "
                                      f"{out_dir / BEST} to go on from its best model)")
            weights = {k[len("model."):]: v for k, v in state.tensors.items() if k.startswith("model.")}
            _check_widths(weights, model, out_dir / LAST)
            model.network.load_state_dict(weights, strict=True)
            load_optimizer(optimizer, state.tensors, state.meta["optimizer"])
            torch.set_rng_state(state.tensors["rng.torch"])
            if state.meta["scaler"]:
                scaler.load_state_dict(state.meta["scaler"])
            curriculum = Curriculum.from_dict(state.meta["curriculum"])
            normalization = state.meta["normalization"]
            history, best, start_epoch = state.meta["history"], state.meta["best_val_top1"], state.meta["epoch"]
            elapsed = state.meta["seconds"]
            original_top1, copy_top1 = state.meta.get("original_top1"), state.meta.get("copy_top1")
            saved_lr = state.meta.get("base_lr")  # the rate the run started with, whatever today's defaults
            best_path = out_dir / BEST if (out_dir / BEST).exists() else None
            resumed = True
    if normalization is None:
        normalization = compute_normalization(train_set.images)
    model.identity = model.identity.trained(normalization, train_set.class_names)

    def record(row: dict[str, Any]) -> None:
        """Append `row` to the history, print it, write the metrics and, when validation improved, best."""
        nonlocal best, best_path
        history.append(row)
        (tqdm.write if config.progress else print)(" ".join(f"{k}={v}" for k, v in row.items()))  # bar or not
        improved = row["val_top1"] > best
        best = max(best, row["val_top1"])
        if out_dir is None:
            return
        _write_metrics(out_dir, history)
        if improved:
            best_path = save_checkpoint(
                out_dir / BEST, model, extra={"training": config.to_dict(), "metrics": row,
                                              "data_source": dict(getattr(train_set, "source", None) or {})})

    with deterministic_algorithms():
        if not resumed:  # epoch 0: the model as given; evaluation uses no random numbers, so a rerun repeats it
            val = evaluate(model, val_set.images, val_set.labels, normalization, device=device)
            record({"epoch": 0, "active_classes": int(curriculum.active_mask(0).sum()), "train_loss": None,
                    "train_top1": None, "val_loss": round(val.loss, 6), "val_top1": round(val.top1, 4), "lr": None,
                    "seconds": 0.0})
        start = history[0]["val_top1"] if copy_top1 is None else copy_top1  # row 0 survives a resume
        kept = start / original_top1 if original_top1 else None
        base_lr = config.resolved_lr(zoo_family(model), kept) if saved_lr is None else saved_lr
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            data, soft = train_set, teacher_logits
            if draws is not None and epoch > 0:
                data = draws(epoch)
                check_compatible(model, data, config, f"epoch {epoch} train")
                soft = None if teacher_logits is None else teacher(data.images)
            active = curriculum.active_mask(epoch)
            order = epoch_order(data.labels, active, config.fold, config.seed, epoch)
            mask = None if bool(active.all()) else active
            train_loss, train_top1 = _train_epoch(
                model, optimizer, scaler, data, order, mask, normalization, soft, config, epoch, base_lr)
            check_finite_model(model, epoch)
            val = evaluate(model, val_set.images, val_set.labels, normalization, device=device)
            elapsed += time.perf_counter() - t0
            record({"epoch": epoch + 1, "active_classes": int(active.sum()), "train_loss": round(train_loss, 6),
                    "train_top1": round(train_top1, 4), "val_loss": round(val.loss, 6),
                    "val_top1": round(val.top1, 4), "lr": optimizer.param_groups[0]["lr"],
                    "seconds": round(elapsed, 3)})
            if out_dir is None:
                continue
            opt_tensors, opt_meta = optimizer_tensors(optimizer)
            tensors = {f"model.{k}": v for k, v in model.network.state_dict().items()}
            tensors.update(opt_tensors)
            tensors["rng.torch"] = torch.get_rng_state()
            save_state(out_dir / LAST, tensors, {
                "config": config.to_dict(), "epoch": epoch + 1, "history": history, "best_val_top1": best,
                "seconds": elapsed, "optimizer": opt_meta, "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "curriculum": curriculum.to_dict(), "normalization": normalization, "original_top1": original_top1,
                "copy_top1": copy_top1, "base_lr": base_lr})
    model.eval()
    return TrainResult(model, history, normalization, best_path, best, elapsed, base_lr)
