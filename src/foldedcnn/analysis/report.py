"""Rows and plot behind `foldedcnn analyze`."""

from __future__ import annotations

from pathlib import Path

from . import ModelAnalysis, analyze_zoo_model, roofline_bound
from .probe import ProbeResult, load_probe

Analyses = dict[tuple[str, int], ModelAnalysis]


def analyze_all(models: list[str], folds: list[int], align: int | None) -> Analyses:
    """Each (model, fold) analysed once, f = 1 included (the baseline of the intensity gain)."""
    return {(m, f): analyze_zoo_model(m, f, align=align) for m in models for f in sorted({1, *folds})}


def find_probe(device: str | None, bytes_per_element: float) -> ProbeResult | None:
    """A cached probe whose dtype has `bytes_per_element` bytes, on `device` (or cuda, then cpu)."""
    dtypes = ["float32"] if bytes_per_element == 4 else ["float16", "bfloat16"]
    for dev in [device] if device else ["cuda", "cpu"]:
        for dtype in dtypes:
            probe = load_probe(dev, dtype)
            if probe is not None:
                return probe
    return None


def analysis_rows(analyses: Analyses, models: list[str], folds: list[int], batch: int, bytes_per_element: float,
                  probe: ProbeResult | None) -> list[dict]:
    """One dict per (model, fold): params, FLOPs, intensity and its gain over f = 1, roofline."""
    rows = []
    for name in models:
        base = analyses[(name, 1)].intensity(batch, bytes_per_element)
        for fold in folds:
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
        for fold in folds:
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
