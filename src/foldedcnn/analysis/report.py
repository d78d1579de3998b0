"""Rows and plot behind `foldedcnn analyze`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import FoldError
from ..transform import ModelRef
from . import ModelAnalysis, analyze_model, roofline_bound
from .probe import ProbeResult, load_probe

Analyses = dict[tuple[str, int], ModelAnalysis]
PROBE_DTYPES = ("float32", "float16", "bfloat16")


def analyze_all(models: Sequence[ModelRef], folds: Sequence[int], align: int | None,
                skipped: Callable[[str], object] = print, min_block: int | None = None) -> Analyses:
    """Each (model label, fold) analysed once, f = 1 included (the baseline of the intensity gain); widths by
    `align` and `min_block` (models.widths).

    A fold a model's family cannot use is skipped (told to `skipped`); when no model can use any of
    `folds`, the first such FoldError is raised.
    """
    analyses: Analyses = {}
    errors: list[tuple[str, FoldError]] = []
    for ref in models:
        for fold in sorted({1, *folds}):
            try:
                analyses[(ref.label, fold)] = analyze_model(ref.build(fold, align=align, min_block=min_block),
                                                              name=ref.label)
            except FoldError as exc:
                errors.append((f"{ref.label} f={fold}", exc))
    if errors and not any(fold in folds for _, fold in analyses):
        raise errors[0][1]
    for what, exc in errors:
        skipped(f"skipping {what}: {exc}")
    return analyses


def find_probe(device: str | None, bytes_per_element: float) -> ProbeResult | None:
    """A cached probe whose dtype has `bytes_per_element` bytes, on `device` (or cuda, then cpu)."""
    dtypes = ["float32"] if bytes_per_element == 4 else ["float16", "bfloat16"]
    for dev in [device] if device else ["cuda", "cpu"]:
        for dtype in dtypes:
            probe = load_probe(dev, dtype)
            if probe is not None:
                return probe
    return None


def missing_probe_note(device: str | None, bytes_per_element: float) -> str:
    """Why `analyze` has no roofline: the probes that are cached (for another dtype size) and what to run."""
    cached = [(dev, dtype) for dev in ([device] if device else ["cuda", "cpu"]) for dtype in PROBE_DTYPES
              if load_probe(dev, dtype) is not None]
    if not cached:
        return "no probe cached: run `foldedcnn probe` to add the roofline bound"
    names = ", ".join(f"{dev} {dtype}" for dev, dtype in cached)
    size = 4 if cached[0][1] == "float32" else 2
    wanted = "float32" if bytes_per_element == 4 else "float16/bfloat16"
    return (f"no {wanted} probe cached for {bytes_per_element:g} bytes/element, only {names}: pass "
            f"--bytes-per-element {size} to use it, or run `foldedcnn probe --dtype {wanted.split('/')[0]}`")


def analysis_rows(analyses: Analyses, models: list[str], folds: list[int], batch: int, bytes_per_element: float,
                  probe: ProbeResult | None) -> list[dict]:
    """One dict per (model, fold): params, FLOPs, intensity and its gain over f = 1, roofline."""
    rows = []
    for name in models:
        base = analyses[(name, 1)].intensity(batch, bytes_per_element)
        for fold in folds:
            if (name, fold) not in analyses:
                continue
            a = analyses[(name, fold)]
            ai = a.intensity(batch, bytes_per_element)
            row = {
                "model": name,
                "fold": fold,
                "params": a.params,
                "flops_per_input": a.flops_per_input,
                "flops_per_image": a.flops_per_image,
                "intensity": round(ai, 4),
                "intensity_gain": round(ai / base, 4),
                "intensity_limit": round(a.intensity_limit(bytes_per_element), 4),
                "batch": batch,
                "bytes_per_element": bytes_per_element,
            }
            if probe is not None:
                bound = roofline_bound(a.flops_per_image, a.bytes_per_image(batch, bytes_per_element),
                                       probe.peak_flops, probe.bandwidth)
                row["roofline_images_per_s"] = round(bound.images_per_s, 1)
                row["roofline_binding"] = bound.binding
            rows.append(row)
    return rows


def plot_intensity(analyses: Analyses, models: list[str], folds: list[int], bytes_per_element: float,
                   path: str) -> Path:
    """Intensity against batch size (1..8192 images) for each fold, one panel per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = [2**k for k in range(14)]
    cols = min(3, len(models))
    rows = -(-len(models) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, models, strict=False):
        for fold in [f for f in folds if (name, f) in analyses]:
            a = analyses[(name, fold)]
            ax.plot(batches, [a.intensity(b, bytes_per_element) for b in batches], marker=".", label=f"f={fold}")
        ax.set_xscale("log", base=2)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("batch size (images)")
        ax.set_ylabel("FLOP / byte")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    fig.suptitle("Arithmetic intensity: batching plateaus, folding lifts the plateau", fontsize=11)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
