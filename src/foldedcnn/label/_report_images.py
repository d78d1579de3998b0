"""The report's images: a video's score (and label) timeline as a PNG, a frame's thumbnail as a JPEG."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from ._labels_csv import FrameLabels

POSITIVE_COLOR, UNCERTAIN_COLOR, SCORE_COLOR, LABEL_COLOR = "#d93025", "#e37400", "#1a4f8b", "#1a7f37"
UNDECODABLE_COLOR = "#80868b"
THUMB_WIDTH = 320


def timeline_png(labels: FrameLabels, thresholds: tuple[float, float],
                 gaps: Sequence[Sequence[float]] = ()) -> bytes:
    """PNG of score against time with the thresholds, the uncertain band, positive and uncertain frames marked, and
    frames that did not decode (damaged data: no score) as ticks under the axis; for a multi-class model, above it
    the label of every frame (uncertain ones marked). `gaps`: [time of the row before, of the row after] of stretches
    the file holds no frames of (summary.json's gaps_s), shaded, the score line broken across them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lo, hi = thresholds
    fig = Figure(figsize=(11.5, 5.6 if labels.multiclass else 2.8), dpi=110)
    FigureCanvasAgg(fig)
    if labels.multiclass:
        top, ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
        _label_track(top, labels)
    else:
        ax = fig.add_subplot()
    x = labels.time_s
    if not labels.multiclass:
        ax.axhspan(lo, hi, color=UNCERTAIN_COLOR, alpha=0.10, lw=0, label=f"reference model ({lo:.3g}-{hi:.3g})")
        ax.axhline(lo, color=UNCERTAIN_COLOR, lw=0.9, ls="--")
    ax.axhline(hi, color=UNCERTAIN_COLOR, lw=0.9, ls="--")
    score = "top-1 p" if labels.multiclass else f"P({labels.class_names[1]})"
    ax.plot(*broken_at(x, labels.score, gaps), color=SCORE_COLOR, lw=0.9, label=score)
    for k, (before, after) in enumerate(gaps):
        ax.axvspan(before, after, color=UNDECODABLE_COLOR, alpha=0.18, lw=0,
                   label=None if k else "missing from the file (damaged)")
    if not labels.multiclass:
        ax.scatter(x[labels.positive], labels.score[labels.positive], s=7, color=POSITIVE_COLOR, zorder=3,
                   label="positive")
    ax.scatter(x[labels.uncertain], labels.score[labels.uncertain], s=9, color=UNCERTAIN_COLOR, zorder=3,
               label="uncertain")
    if not labels.decoded.all():
        ax.scatter(x[~labels.decoded], np.full(int((~labels.decoded).sum()), -0.015), s=14, marker="|",
                   color=UNDECODABLE_COLOR, zorder=3, label="undecodable (damaged data)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(x.min(initial=0.0), max(x.max(initial=1.0), x.min(initial=0.0) + 1e-6))
    ax.set_xlabel("time (s)")
    ax.set_ylabel(score if labels.multiclass else "score")
    _tidy(ax)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.24), ncol=5, frameon=False, fontsize=8.5)
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def broken_at(x: np.ndarray, y: np.ndarray, gaps: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """The line (x, y), (N,) each with x increasing, with a NaN point (where matplotlib breaks a line) between the
    rows either side of each gap [before, after]: (N + G,) each."""
    at = np.searchsorted(x, [after for _, after in gaps])
    return np.insert(x.astype(float), at, np.nan), np.insert(y.astype(float), at, np.nan)


MAX_LABEL_TICKS = 40  # a label track names at most this many labels on its axis


def _label_track(ax, labels: FrameLabels) -> None:
    """Each frame's label against time: one row per label that occurs (in class order), uncertain frames in the
    uncertain colour (frames that did not decode have none)."""
    seen = [c for c in labels.class_names if c in set(labels.label[labels.decoded])]
    row = {c: i for i, c in enumerate(seen)}
    y = np.array([row.get(c, np.nan) for c in labels.label], dtype=float)
    sure, unsure = labels.certain, labels.uncertain
    ax.scatter(labels.time_s[sure], y[sure], s=6, marker="s", color=LABEL_COLOR, lw=0, label="label")
    ax.scatter(labels.time_s[unsure], y[unsure], s=6, marker="s", color=UNCERTAIN_COLOR, lw=0,
               label="label (uncertain)")
    step = max(1, -(-len(seen) // MAX_LABEL_TICKS))
    ax.set_yticks(range(0, len(seen), step), seen[::step], fontsize=8)
    ax.set_ylim(-0.7, len(seen) - 0.3)
    ax.set_ylabel("label")
    _tidy(ax)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.14), ncol=2, frameon=False, fontsize=8.5)


def _tidy(ax) -> None:
    ax.grid(alpha=0.25, lw=0.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def thumbnail_jpeg(rgb: np.ndarray, roi: tuple[int, int, int, int] | None, color: str) -> bytes:
    """JPEG of a frame (H, W, 3) uint8 scaled to THUMB_WIDTH wide with the region outlined in `color`, and beside
    it the region itself at the thumbnail's height (what the model looked at)."""
    from PIL import Image, ImageDraw

    frame = Image.fromarray(rgb)
    scale = THUMB_WIDTH / frame.width
    img = frame.resize((THUMB_WIDTH, max(1, round(frame.height * scale))), Image.Resampling.LANCZOS)
    if roi is not None:
        x, y, w, h = roi
        box = (round(x * scale), round(y * scale), round((x + w) * scale) - 1, round((y + h) * scale) - 1)
        ImageDraw.Draw(img).rectangle(box, outline=color, width=2)
        crop = frame.crop((x, y, x + w, y + h))
        crop = crop.resize((max(1, round(w * img.height / h)), img.height), Image.Resampling.LANCZOS)
        sheet = Image.new("RGB", (img.width + 3 + crop.width, img.height), color)
        sheet.paste(img, (0, 0))
        sheet.paste(crop, (img.width + 3, 0))
        img = sheet
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=82)
    return buf.getvalue()
