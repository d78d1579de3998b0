"""Timing: build every variant of a model, then time them round-robin, trial after trial.

Kernel mode times the backend's folded forward on inputs already on the device and folded;
end-to-end mode times Engine.predict on host uint8 images (B, H, W, C): transfer, normalise,
fold, forward, unfold, logits back on the host.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..folded import FoldedModel
from ..infer import Engine
from ..transform import ModelRef


@dataclass(frozen=True)
class Variant:
    """One benchmarked configuration; `batch` counts images. `model` is the name in the tables; `ref` says how
    to build it (None: the zoo model `model`)."""

    model: str
    fold: int
    batch: int
    backend: str
    dtype: str
    mode: str
    ref: ModelRef | None = None

    def build(self) -> FoldedModel:
        """The untrained model at the variant's fold (eval mode)."""
        return (self.ref or ModelRef(self.model)).build(self.fold).eval()


def engine_for(variant: Variant, device: str) -> Engine:
    """An Engine for the variant's model, fold, backend, dtype and batch (any mode)."""
    return Engine(variant.build(), backend=variant.backend, device=device, dtype=variant.dtype,
                  max_batch=variant.batch)


def build(variant: Variant, engine: Engine) -> Callable[[], None]:
    """A callable that processes one batch of `variant.batch` random images with `engine` (built by
    engine_for) in the variant's mode and waits for the device."""
    c, h, w = engine.input_shape
    if variant.mode == "end-to-end":
        host = torch.randint(0, 256, (variant.batch, h, w, c), dtype=torch.uint8)
        return lambda: engine.predict(host)  # returns CPU logits, so the device is done
    folded = engine.prepare(torch.rand(variant.batch, c, h, w)).images
    forward = engine.backend.forward_folded
    if engine.device.type == "cuda":
        return lambda: (forward(folded), torch.cuda.synchronize(engine.device))
    return lambda: forward(folded)


def measure(
    variants: Sequence[Variant],
    device: str,
    trials: int,
    iterations: int,
    warmup: int,
    progress: Callable[[int], object] | None = None,
) -> dict[Variant, list[float]]:
    """images/s of each variant in each trial (len == trials).

    All variants are built and warmed up (`warmup` batches each, after the first call that
    compiles) first; then each trial times `iterations` batches of every variant in turn, so
    slow drifts of the machine hit all variants alike. `progress(n)` is told of each timed step.
    """
    runs, engines = {}, {}
    for v in variants:
        key = (v.model, v.fold, v.batch, v.backend, v.dtype)  # the modes of a variant share one engine
        if key not in engines:
            engines[key] = engine_for(v, device)
        run = build(v, engines[key])
        for _ in range(1 + warmup):
            run()
        runs[v] = run
    rates: dict[Variant, list[float]] = {v: [] for v in variants}
    for _ in range(trials):
        for v, run in runs.items():
            t0 = time.perf_counter()
            for _ in range(iterations):
                run()
            rates[v].append(iterations * v.batch / (time.perf_counter() - t0))
            if progress is not None:
                progress(1)
    return rates
