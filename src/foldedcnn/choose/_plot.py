"""Plot of a Choice: test top-1 against images/s per fold, the frontier, the tolerance and the recommendation."""

from __future__ import annotations

import os
from pathlib import Path

from ._frontier import Choice


def plot_frontier(choice: Choice, path: str | os.PathLike, title: str = "") -> Path:
    """Write a PNG of `choice` to `path` and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [c.images_per_s for c in choice.candidates]
    ax.scatter(xs, [c.top1 for c in choice.candidates], color="tab:gray", zorder=2)
    ax.plot([c.images_per_s for c in choice.frontier], [c.top1 for c in choice.frontier], "o-", color="tab:blue",
            label="frontier", zorder=3)
    for c in choice.candidates:
        ax.annotate(f"f={c.fold}", (c.images_per_s, c.top1), textcoords="offset points", xytext=(5, 5))
    ax.axhline(choice.reference.top1 - choice.max_drop, color="tab:red", linestyle="--",
               label=f"original - {choice.max_drop:g} points")
    rec = choice.recommended
    ax.scatter([rec.images_per_s], [rec.top1], s=200, facecolors="none", edgecolors="tab:green", linewidths=2,
               label=f"recommended: f={rec.fold}", zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel(f"images/s (end to end, best backend: {', '.join(sorted({c.backend for c in choice.candidates}))})")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
