"""The benchmark's grid: every (model, fold, batch, backend, mode) to time, and the device peaks to rate them by."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..analysis.probe import ProbeResult, load_probe, probe_device, save_probe
from ..errors import FoldedCNNError, FoldError
from ..transform import ModelRef
from .runner import PEER, Variant


def parse_batch_for(items: Sequence[str], models: Sequence[str]) -> dict[str, int]:
    """{"resnet18-cifar10": 64} from ["resnet18-cifar10=64"]: a smaller batch for some of `models` (names)."""
    table = {}
    for item in items:
        name, _, batch = item.rpartition("=")
        if not batch.isdigit() or int(batch) < 1:
            raise FoldedCNNError(f"--batch-for takes MODEL=BATCH with BATCH >= 1, got {item!r}")
        if name not in models:
            raise FoldedCNNError(f"--batch-for names {name!r}, which is not among the models: {', '.join(models)}")
        table[name] = int(batch)
    return table


def parse_backend_folds(items: Sequence[str], backends: Sequence[str]) -> dict[str, set[int]]:
    """{"compile-max": {1, 4}} from ["compile-max=1,4"]: run some backends at only these folds."""
    table = {}
    for item in items:
        name, _, folds = item.partition("=")
        try:
            table[name] = {int(f) for f in folds.split(",")}
        except ValueError:
            raise FoldedCNNError(f"--backend-folds takes BACKEND=F,F (e.g. compile-max=1,4), got {item!r}") from None
        if name not in backends:
            raise FoldedCNNError(f"--backend-folds names {name!r}, which is not among --backends {' '.join(backends)}")
    return table


def variant_grid(
    models: Sequence[ModelRef],
    folds: Sequence[int],
    batches: Sequence[int],
    backends: Sequence[str],
    dtype: str,
    modes: Sequence[str],
    *,
    batch_for: dict[str, int] | None = None,
    baseline: bool = True,
    peer: bool = False,
    backend_folds: dict[str, set[int]] | None = None,
    skipped: Callable[[str], object] = print,
) -> dict[str, list[Variant]]:
    """Variants per model name, in the order they are timed. A (model, fold) the family cannot fold is skipped
    (told to `skipped`); `batch_for` (by name) replaces `batches` for some models; `baseline` adds eager fp32
    NCHW PyTorch ("torch-plain") at f = 1; `peer` adds PEER (torch.compile max-autotune of the original) at
    f = 1 in kernel mode; `backend_folds` runs some backends at only some folds."""
    batch_for = batch_for or {}
    backend_folds = backend_folds or {}
    groups: dict[str, list[Variant]] = {}
    for ref in models:
        name = ref.label
        for fold in folds:
            try:
                ref.build(fold)
            except FoldError as exc:
                skipped(f"skipping {name} f={fold}: {exc}")
                continue
            for batch in ([batch_for[name]] if name in batch_for else batches):
                for mode in modes:
                    variants = [Variant(name, fold, batch, b, dtype, mode, ref) for b in backends
                                if fold in backend_folds.get(b, {fold})]
                    if baseline and fold == 1:
                        variants.append(Variant(name, fold, batch, "torch-plain", "float32", mode, ref))
                    if peer and fold == 1 and mode == "kernel":
                        variants.append(Variant(name, 1, batch, PEER, dtype, mode, ref))
                    groups.setdefault(name, []).extend(dict.fromkeys(variants))
    return groups


def peak_probes(device: str, dtypes: Sequence[str], reprobe: bool = False,
                say: Callable[[str], object] = print) -> dict[str, ProbeResult]:
    """Measured peaks of `device` per dtype: the cached probe, else (or with `reprobe`) the best of 3 new ones."""
    probes = {}
    for d in sorted(set(dtypes)):
        cached = None if reprobe else load_probe(device, d)
        if cached is None:
            # A peak is what the device can do; other load only lowers a measurement, so keep the best of 3.
            say(f"probing {device} {d} peak FLOP/s and bandwidth (best of 3) ...")
            cached = max((probe_device(device, d) for _ in range(3)), key=lambda p: p.peak_flops)
            save_probe(cached)
        probes[d] = cached
    return probes
