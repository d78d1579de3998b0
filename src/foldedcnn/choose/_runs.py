"""Train or reuse one run per fold, evaluate it on the test split and time it on this machine's best backend."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import CheckpointError, load_checkpoint, read_metadata
from ..device import median_seconds
from ..errors import FoldedCNNError
from ..train import TrainConfig, evaluate, train_from_config
from ..transform import ModelRef, select_channels
from ._frontier import Candidate, Choice, recommend
from ._plot import plot_frontier


def _trusted(checkpoint: Path, ref: ModelRef) -> bool:
    """Whether loading `checkpoint` may run code: never for a zoo model; for your own model only the code you
    named (`ref`), which the checkpoint must record as its source, else CheckpointError."""
    if ref.is_zoo:
        return False
    recorded = read_metadata(checkpoint)["architecture"].get("source")
    if recorded != ref.source:
        raise CheckpointError(f"{checkpoint} was built from {recorded}, not from {ref.label} "
                              f"({ref.source}); choose into a new --out")
    return True


def _warm_start_refusal(ref: ModelRef, fold: int, original: nn.Module) -> str | None:
    """Why `ref` folded `fold` times cannot be warm-started from `original`, its unfolded network (a GroupNorm, a
    grouped conv), or None."""
    folded = ref.build(fold)
    try:
        select_channels(folded, original)
    except FoldedCNNError as exc:
        return str(exc)
    return None


def _throughput(checkpoint: Path, backend: str, device: str, batch: int, trust_code: bool) -> tuple[float, str]:
    """End-to-end images/s of Engine.predict on `batch` host uint8 images (B, C, H, W), and the backend used."""
    from ..infer import Engine

    engine = Engine(checkpoint, backend=backend, device=device, max_batch=batch, trust_code=trust_code)
    images = torch.randint(0, 256, (batch, *engine.input_shape), dtype=torch.uint8)
    seconds = median_seconds(lambda: engine.predict(images), engine.device.type)
    return batch / seconds, engine.backend_name


def choose_fold(
    data: str,
    model: str,
    *,
    model_kwargs: dict | None = None,
    folds: Sequence[int] = (1, 2, 3, 4),
    max_drop: float = 0.5,
    epochs: int = 10,
    finetune_epochs: int | None = None,
    batch: int = 32,
    lr: float | None = None,
    fresh_data: bool = False,
    seed: int = 0,
    out: str | os.PathLike = "runs/choose",
    device: str = "cpu",
    backend: str = "auto",
    measure_batch: int = 1024,
    progress: bool = False,
) -> Choice:
    """Pick the fold of `model` to deploy on data spec `data`: a zoo name, or your own model's factory
    ("pkg.module:function" or "path/file.py:function" returning the unfolded network, called with `model_kwargs`;
    its checkpoints under `out` are loaded running only that code).

    f = 1 is trained from scratch for `epochs` (at `lr`, cosine); every other fold is warm-started from it (or,
    where warm start cannot copy the model, e.g. a GroupNorm, trained from scratch as f = 1 is, with a note) and
    fine-tuned on the labels (the library's fine-tune defaults; no distillation toward an original trained this
    briefly, which held the CPU game tasks 3-15 points back: benchmarks/results/accuracy.md): its narrow network for
    `finetune_epochs` (default `epochs`), then the folded model for a quarter as many (at least 1), as in
    benchmarks/accuracy.py. Runs live in `out`/f<F>/ and a finished one is reused (an interrupted one resumes).
    Each best checkpoint is evaluated on the test split and timed end to end (`measure_batch` uint8 images per call) on
    `backend` ("auto": the fastest here). Writes `out`/frontier.png and returns the Choice (see recommend).
    """
    folds = sorted(set(folds) | {1})
    if any(f < 1 for f in folds):
        raise FoldedCNNError(f"folds must be >= 1, got {folds}")
    from ..data import load_data

    out = Path(out)
    train_set, val_set, test_set = (load_data(data, split) for split in ("train", "val", "test"))
    original = out / "f1" / "best.safetensors"
    ref = ModelRef(model, tuple(train_set.images.shape[1:]), model_kwargs or {})  # the data's images
    unfolded = ref.build(1).network if max(folds) > 1 else None  # what the folds would be warm-started from
    common = {"model": model, "model_kwargs": dict(ref.kwargs), "data": data, "batch": batch, "seed": seed,
              "fresh_data": fresh_data, "device": device, "progress": progress}
    candidates = []
    for fold in folds:
        refusal = None if fold == 1 else _warm_start_refusal(ref, fold, unfolded)
        if fold == 1 or refusal:
            config = TrainConfig(fold=fold, epochs=epochs, lr=lr, schedule="cosine", **common)
        else:
            narrow = finetune_epochs or epochs
            config = TrainConfig(fold=fold, epochs=max(1, narrow // 4), narrow_epochs=narrow, init_from=str(original),
                                 **common)
        trust = config.init_from is not None and _trusted(original, ref)  # the folds warm-start from the original
        result = train_from_config(config, out / f"f{fold}", train_set=train_set, val_set=val_set, trust_code=trust)
        trust = _trusted(result.best_path, ref)
        best = load_checkpoint(result.best_path, device=device, trust_code=trust)
        top1 = evaluate(best.model, test_set.images, test_set.labels, best.normalization, device=device).top1
        images_per_s, used = _throughput(result.best_path, backend, device, measure_batch, trust)
        note = f"no warm start ({refusal}): trained from scratch for {epochs} epochs, as f=1" if refusal else None
        candidates.append(Candidate(fold, round(top1, 2), round(images_per_s, 1), used, result.best_path,
                                    "warm start" if config.init_from else "scratch", note))
    choice = recommend(candidates, max_drop)
    plot_frontier(choice, out / "frontier.png", title=f"{model} on {data}")
    return choice
