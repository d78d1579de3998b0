"""Derived metrics (FLOP/s, utilization, roofline, speedups) and the written report.

Per row: images/s median and min-max over trials; flops_per_s = flops_per_image x images/s;
utilization = flops_per_s / probed peak of the dtype; roofline_fraction = images/s / roofline
bound at the batch (bytes at the dtype's size); speedup_vs_f1 = images/s / the same model, batch,
backend, dtype and mode at f = 1; speedup_vs_eager = images/s / eager PyTorch fp32 NCHW
("torch-plain", float32) of the unfolded model (f = 1) at the same batch and mode; speedup_vs_peer =
images/s / the peer (plain torch.compile max-autotune of the unfolded model, kernel mode) at the same
batch and dtype.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..analysis import analyze_model, roofline_bound
from ..analysis.probe import ProbeResult
from ..device import DTYPES
from ..tables import markdown_table
from .runner import PEER, Variant

COLUMNS = [
    "model", "fold", "batch", "backend", "dtype", "mode", "images_per_s", "images_per_s_min", "images_per_s_max",
    "speedup_vs_f1", "speedup_vs_eager", "speedup_vs_peer", "flops_per_image", "flops_per_s", "utilization",
    "roofline_images_per_s", "roofline_binding", "roofline_fraction", "trials", "iterations",
]
SUMMARY_COLUMNS = ["model", "fold", "batch", "backend", "dtype", "mode", "images_per_s", "images_per_s_min",
                   "images_per_s_max", "speedup_vs_f1", "speedup_vs_eager", "speedup_vs_peer", "utilization",
                   "roofline_fraction"]
BASELINE = ("torch-plain", "float32")


def derive_rows(rates: Mapping[Variant, list[float]], probes: Mapping[str, ProbeResult],
                iterations: int) -> list[dict[str, Any]]:
    """One row per variant with every column of COLUMNS; `probes` maps dtype name -> probe."""
    rows = []
    analyses = {(v.model, v.fold): analyze_model(v.build()) for v in {(v.model, v.fold): v for v in rates}.values()}
    for v, r in rates.items():
        analysis = analyses[(v.model, v.fold)]
        ips = statistics.median(r)
        probe = probes[v.dtype]
        bound = roofline_bound(analysis.flops_per_image, analysis.bytes_per_image(v.batch, DTYPES[v.dtype].itemsize),
                               probe.peak_flops, probe.bandwidth)
        flops_per_s = analysis.flops_per_image * ips
        rows.append({
            "model": v.model, "fold": v.fold, "batch": v.batch, "backend": v.backend, "dtype": v.dtype,
            "mode": v.mode, "images_per_s": ips, "images_per_s_min": min(r), "images_per_s_max": max(r),
            "flops_per_image": analysis.flops_per_image, "flops_per_s": flops_per_s,
            "utilization": flops_per_s / probe.peak_flops, "roofline_images_per_s": bound.images_per_s,
            "roofline_binding": bound.binding, "roofline_fraction": ips / bound.images_per_s,
            "trials": len(r), "iterations": iterations,
        })
    by_key = {(r["model"], r["fold"], r["batch"], r["backend"], r["dtype"], r["mode"]): r for r in rows}
    for r in rows:
        f1 = by_key.get((r["model"], 1, r["batch"], r["backend"], r["dtype"], r["mode"]))
        eager = by_key.get((r["model"], 1, r["batch"], *BASELINE, r["mode"]))
        peer = by_key.get((r["model"], 1, r["batch"], PEER, r["dtype"], "kernel"))
        r["speedup_vs_f1"] = r["images_per_s"] / f1["images_per_s"] if f1 else None
        r["speedup_vs_eager"] = r["images_per_s"] / eager["images_per_s"] if eager else None
        r["speedup_vs_peer"] = r["images_per_s"] / peer["images_per_s"] if peer else None
    return rows


SPREAD_LIMIT = 0.30  # (max - min) / median of the trials above this: the machine was not steady


def measurement_warnings(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per row whose trials spread more than SPREAD_LIMIT of their median, or whose utilization or
    roofline fraction exceeds 1 (faster than the probed peak allows: the probe underestimates the device)."""
    out = []
    for r in rows:
        what = f"{r['model']} f={r['fold']} batch {r['batch']} {r['backend']} {r['dtype']} {r['mode']}"
        spread = (r["images_per_s_max"] - r["images_per_s_min"]) / r["images_per_s"]
        if spread > SPREAD_LIMIT:
            out.append(f"{what}: trials spread {r['images_per_s_min']:,.0f}-{r['images_per_s_max']:,.0f} images/s, "
                       f"{spread:.0%} of the median (limit {SPREAD_LIMIT:.0%}); the machine was busy or "
                       "throttling: rerun with more --trials and --iterations on a quiet machine")
        above = [f"{k} {r[k]:.2f}" for k in ("utilization", "roofline_fraction") if r[k] > 1]
        if above:
            out.append(f"{what}: {' and '.join(above)} exceed 1, faster than the probed peak allows: the probe "
                       "underestimates this device (rerun with --reprobe on an idle machine); treat these ratios "
                       "as bounds, not measurements")
    return out


def best_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (model, mode, batch): the fastest row over backends, dtypes and folds."""
    best: dict[tuple, Mapping[str, Any]] = {}
    for r in rows:
        key = (r["model"], r["mode"], r["batch"])
        if key not in best or r["images_per_s"] > best[key]["images_per_s"]:
            best[key] = r
    return [dict(best[k]) for k in sorted(best)]


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({c: r.get(c) for c in COLUMNS})


def _panels(models: list[str], path: Path, draw: Callable[[Any, str], None]) -> Path:
    """A figure with one panel per model (up to 4 a row), drawn by draw(ax, model), and one legend for all
    panels below them; saved to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(models))
    nrows = -(-len(models) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(max(6.0, 4.4 * cols), 3.4 * nrows), squeeze=False)
    for ax, model in zip(axes.flat, models, strict=False):
        draw(ax, model)
    for ax in axes.flat[len(models):]:
        ax.axis("off")
    legend = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    ncol = min(3, max(1, len(legend)))
    lines = -(-len(legend) // ncol)
    below = 0.28 * lines / fig.get_figheight()  # room for the legend, as a share of the height
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, min(0.5, below + 0.02), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_plots(rows: Sequence[Mapping[str, Any]], out: Path) -> list[Path]:
    """throughput_vs_batch.png (median images/s with min-max error bars against batch, a line per fold and
    backend; against fold when only one batch was measured) and speedup.png (speedup over f = 1 per backend
    and fold, at each model's largest batch). One panel per model, one legend below."""
    models = sorted({r["model"] for r in rows})
    styles = ["-", "--", ":", "-."]
    modes = len({r["mode"] for r in rows}) > 1
    backends = sorted({(r["backend"], r["dtype"], r["mode"]) for r in rows})

    def name(b: tuple[str, str, str]) -> str:
        return f"{b[0]} {b[1]}" + (f" {b[2]}" if modes else "")

    def errorbar(ax: Any, pts: list[Mapping[str, Any]], x: str, **style: Any) -> None:
        pts = sorted(pts, key=lambda r: r[x])
        med = [r["images_per_s"] for r in pts]
        yerr = [[m - r["images_per_s_min"] for m, r in zip(med, pts, strict=True)],
                [r["images_per_s_max"] - m for m, r in zip(med, pts, strict=True)]]
        ax.errorbar([r[x] for r in pts], med, yerr=yerr, marker="o", markersize=4, capsize=3, **style)

    def throughput(ax: Any, model: str) -> None:
        mine = [r for r in rows if r["model"] == model]
        batches = sorted({r["batch"] for r in mine})
        if len(batches) == 1:  # one batch: images/s against fold, a line per backend
            for i, b in enumerate(backends):
                pts = [r for r in mine if (r["backend"], r["dtype"], r["mode"]) == b]
                if pts:
                    errorbar(ax, pts, "fold", ls=styles[i % len(styles)], color=f"C{i}", label=name(b))
            ax.set_xticks(sorted({r["fold"] for r in mine}))
            ax.set(title=f"{model} (batch {batches[0]})", xlabel="fold f", ylabel="images/s (median, min-max)")
            return
        for fold in sorted({r["fold"] for r in mine}):
            for i, b in enumerate(backends):
                pts = [r for r in mine if r["fold"] == fold and (r["backend"], r["dtype"], r["mode"]) == b]
                if pts:
                    errorbar(ax, pts, "batch", ls=styles[i % len(styles)], color=f"C{fold - 1}",
                             label=f"f={fold} {name(b)}")
        ax.set(title=model, xscale="log", xlabel="batch (images)", ylabel="images/s (median, min-max)")

    def speedup(ax: Any, model: str) -> None:
        mine = [r for r in rows if r["model"] == model and r["speedup_vs_f1"] is not None
                and (r["backend"], r["dtype"]) != BASELINE]  # the baseline runs at f = 1 only
        top = max((r["batch"] for r in mine), default=0)
        mine = [r for r in mine if r["batch"] == top]
        folds = sorted({r["fold"] for r in mine})
        names = sorted({f"{r['backend']} {r['dtype']}" for r in mine})
        width = 0.8 / max(1, len(folds))
        for j, fold in enumerate(folds):
            vals = {f"{r['backend']} {r['dtype']}": r["speedup_vs_f1"] for r in mine if r["fold"] == fold}
            ax.bar([i + j * width for i in range(len(names))], [vals.get(n, 0) for n in names], width,
                   label=f"f={fold}", color=f"C{fold - 1}")
        ax.axhline(1.0, color="k", lw=0.6)
        ax.set_xticks([i + width * (len(folds) - 1) / 2 for i in range(len(names))], names, rotation=30,
                      fontsize=7, ha="right")
        ax.set(title=f"{model} (batch {top})", ylabel="speedup over f=1")

    return [_panels(models, out / "throughput_vs_batch.png", throughput), _panels(models, out / "speedup.png", speedup)]


def write_report(rows: Sequence[Mapping[str, Any]], out: str | Path, command: str, machine: Mapping[str, Any],
                 probes: Mapping[str, ProbeResult], plots: bool = True) -> list[Path]:
    """Write throughput.csv, throughput.md, machine.json (and the two plots) into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "throughput.csv")
    info = {**machine, "probes": {d: {"peak_flops": p.peak_flops, "bandwidth": p.bandwidth,
                                      "measured_at": p.measured_at} for d, p in probes.items()}}
    (out / "machine.json").write_text(json.dumps(info, indent=2) + "\n")
    written = [out / "throughput.csv", out / "machine.json"]
    if plots and rows:
        written += write_plots(rows, out)
    warnings = measurement_warnings(rows)
    peaks = ", ".join(f"{d} {p.peak_flops / 1e9:,.1f} GFLOP/s, {p.bandwidth / 1e9:,.1f} GB/s"
                      for d, p in probes.items())
    md = [
        "# Throughput",
        "",
        f"Machine: {machine['device_name']} (torch {machine['torch']}, {machine['torch_threads']} threads, "
        f"onnxruntime {machine['onnxruntime']}, python {machine['python']}). Probed peak: {peaks}.",
        "",
        "Command:",
        "",
        "```",
        command,
        "```",
        "",
        "images/s is the median over trials (min-max beside it); speedup_vs_f1 is over the same backend at f = 1; "
        "speedup_vs_eager is over eager PyTorch fp32 NCHW (torch-plain) of the unfolded model at the same batch; "
        f"speedup_vs_peer is over {PEER} (plain torch.compile(mode='max-autotune') of the unfolded model, "
        "fp16 channels-last, kernel mode) at the same batch; "
        "utilization is achieved FLOP/s over the probed matmul peak; roofline_fraction is images/s over the "
        "roofline bound.",
        "",
        *(["## Warnings", "", *[f"- {w}" for w in warnings], ""] if warnings else []),
        "## Best variant per model",
        "",
        markdown_table(best_rows(rows), SUMMARY_COLUMNS),
        "",
        "## All variants",
        "",
        markdown_table(rows, SUMMARY_COLUMNS + ["roofline_binding"]),
        "",
    ]
    if plots and rows:
        md += ["![images/s (median, min-max bars) against batch, or against fold for one batch]"
               "(throughput_vs_batch.png)", "", "![speedup over f=1](speedup.png)", ""]
    (out / "throughput.md").write_text("\n".join(md))
    return [*written, out / "throughput.md"]
