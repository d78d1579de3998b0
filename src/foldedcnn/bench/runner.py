"""Timing: build every variant of a model, then time them round-robin, trial after trial.

Kernel mode times the backend's folded forward on inputs already on the device and folded, the
`iterations` batches of a trial queued back to back with one synchronisation at the end (as the
peer is timed), rotating over ROTATE input copies so that a batch is not read from the cache.
End-to-end mode streams `iterations` batches of host uint8 images (B, H, W, C)
through Engine.predict_stream: transfer, normalise, fold, forward, unfold, logits back on the host
(on CUDA the next batch uploads while one computes). The peer (backend PEER) is what a user already
has: plain torch.compile(mode="max-autotune") of the original network (f = 1), channels-last, in
the variant's dtype, timed like kernel mode.
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..device import DTYPES, resolve_device
from ..folded import FoldedModel
from ..infer import Engine
from ..transform import ModelRef

PEER = "peer-max-autotune"
SLOW_TO_BUILD = frozenset({"compile", "compile-max", PEER})  # torch.compile: seconds to minutes per variant
ROTATE = 4  # kernel-mode input copies: one coral batch (15 MB fp16) would otherwise sit in an H200's L2
Run = Callable[[int], None]  # process k batches and wait for the device


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


def _queued(forward: Callable[[torch.Tensor], object], x: torch.Tensor, device: torch.device) -> Run:
    """k calls of `forward` back to back on ROTATE copies of input `x` in turn, then wait for the device."""
    xs = [x.clone() for _ in range(ROTATE)]  # clone keeps x's strides (channels-last stays channels-last)

    def run(k: int) -> None:
        for i in range(k):
            forward(xs[i % ROTATE])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return run


def build(variant: Variant, engine: Engine) -> Run:
    """run(k): process k batches of `variant.batch` random images with `engine` (built by engine_for) in the
    variant's mode and wait for the device."""
    c, h, w = engine.input_shape
    if variant.mode == "end-to-end":
        host = torch.randint(0, 256, (variant.batch, h, w, c), dtype=torch.uint8)
        # logits arrive on the CPU, so the device is done when the stream is drained
        return lambda k: collections.deque(engine.predict_stream(itertools.repeat(host, k)), maxlen=0)
    folded = engine.prepare(torch.rand(variant.batch, c, h, w)).images
    return _queued(engine.backend.forward_folded, folded, engine.device)


def build_peer(variant: Variant, device: str) -> Run:
    """run(k) of the peer: torch.compile(mode="max-autotune") of the variant's original network (f = 1),
    channels-last, weights and a random input (B, C, H, W) in the variant's dtype."""
    from ..infer.backends.compile import prepare_compile

    dev = resolve_device(device)
    dtype = DTYPES[variant.dtype]
    original = Variant(variant.model, 1, variant.batch, variant.backend, variant.dtype, variant.mode, variant.ref)
    model = original.build()
    net = model.network.to(dev, dtype).to(memory_format=torch.channels_last)
    x = torch.randn(variant.batch, *model.input_shape, device=dev).to(dtype).contiguous(
        memory_format=torch.channels_last)
    prepare_compile()
    compiled = torch.compile(net, mode="max-autotune")

    def forward(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return compiled(images)
    return _queued(forward, x, dev)


def _ready(variant: Variant, device: str, engines: dict[tuple, Engine], warmup: int) -> Run:
    """`variant` built (its engine shared with its other modes in `engines`), compiled and warmed up."""
    if variant.backend == PEER:
        run = build_peer(variant, device)
    else:
        key = (variant.model, variant.fold, variant.batch, variant.backend, variant.dtype)  # modes share an engine
        if key not in engines:
            engines[key] = engine_for(variant, device)
        run = build(variant, engines[key])
    run(1)  # compiles, autotunes
    if warmup:
        run(warmup)
    return run


def measure(
    variants: Sequence[Variant],
    device: str,
    trials: int,
    iterations: int,
    warmup: int,
    progress: Callable[[int], object] | None = None,
    deadline: float | None = None,
    keep_going: bool = False,
) -> dict[Variant, list[float]]:
    """images/s of each variant in each trial (len == trials).

    All variants are built and warmed up (`warmup` batches each, after the first call that
    compiles) first; then each trial times `iterations` batches of every variant in turn, so
    slow drifts of the machine hit all variants alike. `progress(n)` is told of each timed step.
    Once time.monotonic() passes `deadline`, variants of the SLOW_TO_BUILD backends are left out (and
    said so); the others still run. With `keep_going`, a variant whose build or first call raises is left
    out with the error printed, and the others are still measured.
    """
    runs: dict[Variant, Run] = {}
    engines: dict[tuple, Engine] = {}
    for v in variants:
        if deadline is not None and v.backend in SLOW_TO_BUILD and time.monotonic() > deadline:
            print(f"time limit: left out {v}", flush=True)
            continue
        try:
            runs[v] = _ready(v, device, engines, warmup)
        except Exception as exc:
            if not keep_going:
                raise
            print(f"failed: left out {v}: {type(exc).__name__}: {exc}", flush=True)
    rates: dict[Variant, list[float]] = {v: [] for v in runs}
    for _ in range(trials):
        for v, run in runs.items():
            t0 = time.perf_counter()
            run(iterations)
            rates[v].append(iterations * v.batch / (time.perf_counter() - t0))
            if progress is not None:
                progress(1)
    return rates
