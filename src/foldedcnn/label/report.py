"""`foldedcnn report`: one self-contained HTML page to look at the labels of a `foldedcnn run`.

Per video: counts and frames/s from summary.json, the score timeline with the cascade's thresholds
(a matplotlib PNG), and thumbnails of positive and uncertain frames re-decoded from the video with
the region drawn. A multi-class model's page (a HUD reader's) shows its labels instead of positives:
the label of every frame over time above its top-class probability, the most frequent labels, and
thumbnails of each label. Every image is embedded as a base64 data URI, so the file can be mailed or
archived.
"""

from __future__ import annotations

import base64
import functools
import html
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.video import VideoIndex
from ..errors import FoldedCNNError
from ..fsio import atomic_write_text
from ._chunk_store import index_kept_for
from ._frame_labels import is_multiclass
from ._labels_csv import FrameLabels, locate_video, read_labels, read_run_summary, run_csv
from ._report_images import LABEL_COLOR, POSITIVE_COLOR, UNCERTAIN_COLOR, thumbnail_jpeg, timeline_png
from .job import DEFAULT_UNCERTAIN


class ReportError(FoldedCNNError):
    """A folder that holds no `foldedcnn run` output."""


@dataclass(frozen=True)
class Report:
    """The written page: its path, how many outputs (videos, or regions of them) the run has and how many the page
    shows, and how many images it embeds."""

    path: Path
    videos: int
    images: int
    shown: int


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _spread(indices: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` of `indices`, evenly spaced over them."""
    if indices.size <= limit:
        return indices
    return indices[np.unique(np.linspace(0, indices.size - 1, limit).round().astype(int))]


def _by_label(labels: FrameLabels, limit: int) -> np.ndarray:
    """At most `limit` certain frames, every label among them where the limit allows (dealt out one per label in
    turn, the most frequent labels first), each label's frames spread evenly over its frames; in frame order."""
    sure = np.flatnonzero(labels.certain)
    names, counts = np.unique(labels.label[sure], return_counts=True)
    groups = [sure[labels.label[sure] == n] for n in names[np.argsort(-counts, kind="stable")]]
    quota = [0] * len(groups)
    while sum(quota) < limit and any(q < len(g) for q, g in zip(quota, groups, strict=True)):
        for j, g in enumerate(groups):
            if sum(quota) < limit and quota[j] < len(g):
                quota[j] += 1
    chosen = [_spread(g, q) for g, q in zip(groups, quota, strict=True) if q]
    return np.sort(np.concatenate(chosen)) if chosen else sure[:0]


def _thumbnails(labels: FrameLabels, video: Path, index: VideoIndex | None, roi, limit: int
                ) -> tuple[dict[str, list[str]], str | None]:
    """HTML figures per kind ("positive", or "labelled" for a multi-class model, and "uncertain") and an error note
    when the video could not be read; `index`: the video's, when the run kept it."""
    from ..data.video import frames_at

    first = ("labelled", _by_label(labels, limit)) if labels.multiclass else \
        ("positive", _spread(np.flatnonzero(labels.positive), limit))
    picks = dict([first, ("uncertain", _spread(np.flatnonzero(labels.uncertain), limit))])
    rows = {int(labels.frame[i]): int(i) for kind in picks.values() for i in kind}
    try:
        decoded = {f.index: f for f in frames_at(video, rows, index)}
    except FoldedCNNError as exc:
        return dict.fromkeys(picks, []), str(exc)
    out: dict[str, list[str]] = {}
    for kind, chosen in picks.items():
        color = {"positive": POSITIVE_COLOR, "labelled": LABEL_COLOR}.get(kind, UNCERTAIN_COLOR)
        figures = []
        for i in chosen:
            frame = decoded.get(int(labels.frame[i]))
            if frame is None:
                continue
            uri = _data_uri(thumbnail_jpeg(frame.rgb, roi, color), "image/jpeg")
            said = f"label <b>{html.escape(str(labels.label[i]))}</b> p" if labels.multiclass else "score"
            caption = (f"frame {labels.frame[i]} &middot; {labels.time_s[i]:.2f} s &middot; {said} "
                       f"{labels.score[i]:.3f}")
            figures.append(f'<figure class="{kind}"><img src="{uri}" alt="frame {labels.frame[i]}">'
                           f"<figcaption>{caption}</figcaption></figure>")
        out[kind] = figures
    return out, None


def _fps(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:,.0f}"


def _multiclass(summary: dict[str, Any]) -> bool:
    return is_multiclass(summary.get("classes") or ())  # a summary written before classes were recorded: two


def _cascade_note(summary: dict[str, Any], lo: float, hi: float) -> str:
    source = summary.get("thresholds_from", "default")
    if _multiclass(summary):
        return (f"A {len(summary['classes'])}-class model: frames whose top-class probability is below "
                f"<b>{hi:.4g}</b> go to the reference model (with the model's label as a provisional one); the others "
                f"keep the model's label. " + ("Threshold set by --uncertain." if source == "--uncertain" else
                                                "Default threshold: <code>--uncertain LO HI</code> sets it."))
    text = (f"Frames scoring &le; <b>{lo:.4g}</b> are negative, &ge; <b>{hi:.4g}</b> positive, and those between "
            f"go to the reference model. ")
    cal = summary.get("calibration")
    if source == "calibration" and cal:
        return text + (f"Thresholds calibrated on {html.escape(cal['data'])} ({cal['split']}, {cal['frames']} frames) "
                       f"for at most {cal['max_fn']:.1%} false negatives and {cal['max_fp']:.1%} false positives; "
                       f"expected share to the reference model {cal['reference_share']:.1%}.")
    return text + ("Thresholds set by --uncertain." if source == "--uncertain" else
                   "Default thresholds: run <code>foldedcnn calibrate</code> to set them from data.")


def _region_text(roi) -> str:
    return "&times;".join(map(str, roi[2:])) + f" at ({roi[0]}, {roi[1]})"


def _name(result: dict[str, Any]) -> str:
    """A result's video file name, and its region when the job had several."""
    name = html.escape(Path(result["video"]).name)
    return name + (f" &middot; region {result['region']} {tuple(result['roi'])}" if result.get("region") else "")


def _video_section(result: dict[str, Any], run_dir: Path, index_of: Callable[[Path], VideoIndex | None], roi,
                   thresholds, limit: int) -> tuple[str, int]:
    """The page's section of one output; `index_of(video)`: the index the run kept of its video, if any."""
    name = _name(result)
    roi = tuple(result["roi"]) if result.get("roi") else roi  # the job's region, in a summary without its own
    if result.get("error"):
        return (f'<section class="video failed"><h2>{name}</h2><p class="error">Failed: '
                f'{html.escape(result["error"])}</p></section>', 0)
    if result.get("skipped"):
        return (f'<section class="video skipped"><h2>{name}</h2><p class="none">Skipped by this run: '
                f'{html.escape(result["skipped"])}</p></section>', 0)
    csv_path = run_csv(run_dir, result)
    if not csv_path.is_file():
        return (f'<section class="video failed"><h2>{name}</h2><p class="error">Its CSV {html.escape(csv_path.name)} '
                f'is missing from {html.escape(str(run_dir))}: rerun the same `foldedcnn run` to write it '
                f'again</p></section>', 0)
    labels = read_labels(csv_path)
    video = locate_video(result["video"], run_dir)
    thumbs, note = _thumbnails(labels, video, index_of(video), roi, limit)
    n = max(1, labels.frame.size)
    if labels.multiclass:
        names, counts = np.unique(labels.label[labels.certain], return_counts=True)
        common = (f"{html.escape(str(names[counts.argmax()]))} ({counts.max() / n:.1%})" if counts.size
                  else "&ndash;")
        found = [("most frequent label (certain)", common), ("labels seen (certain)", f"{names.size:,}")]
    else:
        labelled = int(result.get("positives", labels.positive.sum()))
        found = [("positive (certain)", f"{labelled:,} ({int(labels.positive.sum()):,})")]
    cards = [("frames", f"{labels.frame.size:,}"), *found,
             ("uncertain", f"{int(labels.uncertain.sum()):,} ({labels.uncertain.sum() / n:.1%})"),
             ("frames/s end to end", _fps(result.get("end_to_end_fps"))),
             ("decode / model frames/s", f"{_fps(result.get('decode_fps'))} / {_fps(result.get('model_fps'))}")]
    if undecodable := int((~labels.decoded).sum()):  # damaged packets: rows without a label
        cards.insert(3, ("undecodable (damaged data)", f"{undecodable:,} ({undecodable / n:.1%})"))
    if missing := result.get("missing_frames"):  # a damaged container's frames its demuxer passed over: no rows
        cards.insert(3, ("missing from the file (timestamps jump)", f"{missing:,}"))
    timeline = timeline_png(labels, thresholds, result.get("gaps_s") or ())
    parts = [f'<section class="video"><h2>{name}</h2><p class="path">{html.escape(result["video"])}</p>',
             '<div class="cards">' + "".join(f'<div class="card"><span>{k}</span><b>{v}</b></div>' for k, v in cards)
             + "</div>",
             f'<img class="timeline" src="{_data_uri(timeline, "image/png")}" alt="score timeline of {name}">']
    if note:
        parts.append(f'<p class="error">No thumbnails: {html.escape(note)}</p>')
    titles = {"positive": ("Positive frames (certain)", labels.positive),
              "labelled": ("Labelled frames (certain), each label where room allows", labels.certain),
              "uncertain": ("Uncertain frames (sent to the reference model)", labels.uncertain)}
    for kind, shown in thumbs.items():
        title, which = titles[kind]
        parts.append(f'<h3><i class="dot {kind}"></i>{title} <small>{len(shown)} of {int(which.sum()):,}</small></h3>')
        parts.append(f'<div class="grid">{"".join(shown)}</div>' if shown else '<p class="none">none</p>')
    parts.append("</section>")
    return "\n".join(parts), 1 + sum(len(shown) for shown in thumbs.values())


def _top_labels(video: dict[str, Any], shown: int = 3) -> str:
    """A video's most frequent labels from summary.json ("7 &times;120, 8 &times;80, ...")."""
    counts = list((video.get("labels") or {}).items())
    text = ", ".join(f"{html.escape(name)} &times;{n:,}" for name, n in counts[:shown])
    return (text + (", &hellip;" if len(counts) > shown else "")) or "&ndash;"


def _overview(videos: list[dict[str, Any]], multiclass: bool) -> str:
    found = "labels" if multiclass else "positive"
    head = (f"<tr><th>video</th><th>frames</th><th>{found}</th><th>uncertain</th><th>decode fps</th>"
            "<th>model fps</th><th>end-to-end fps</th><th>status</th></tr>")
    rows = []
    for v in videos:
        damaged = f', {v["undecodable"]:,} undecodable (damaged data)' if v.get("undecodable") else ""
        if v.get("missing_frames"):
            damaged += f', {v["missing_frames"]:,} missing from the file (its timestamps jump over them)'
        status = (f'<span class="bad">{html.escape(v["error"])}</span>' if v.get("error") else
                  f'skipped: {html.escape(v["skipped"])}' if v.get("skipped") else f"ok{damaged}")
        count = _top_labels(v) if multiclass else f"{v.get('positives', 0):,}"
        rows.append(f"<tr><td>{_name(v)}</td><td>{v.get('frames', 0):,}</td>"
                    f"<td>{count}</td><td>{v.get('uncertain', 0):,}</td>"
                    f"<td>{_fps(v.get('decode_fps'))}</td><td>{_fps(v.get('model_fps'))}</td>"
                    f"<td>{_fps(v.get('end_to_end_fps'))}</td><td>{status}</td></tr>")
    return f'<table class="overview">{head}{"".join(rows)}</table>'


def shown_outputs(videos: list[dict[str, Any]], limit: int) -> list[int]:
    """Which of a run's outputs a report shows, in run order: every failed or skipped one, and the `limit` with the
    most uncertain frames (where a person has most to check; the first ones on a tie)."""
    listed = {i for i, v in enumerate(videos) if v.get("error") and not v.get("truncated") or v.get("skipped")}
    done = sorted((i for i in range(len(videos)) if i not in listed), key=lambda i: (-videos[i].get("uncertain", 0), i))
    return sorted([*listed, *done[:limit]])


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *, thumbnails: int = 12,
                 videos: int = 50) -> Report:
    """Render RUN_DIR (the --out of `foldedcnn run`) as one HTML file, default RUN_DIR/report.html.

    `thumbnails`: at most this many positive and this many uncertain frames per video, evenly spread. `videos`: the
    page shows every output the run failed on or left out and this many of the others, those with the most
    uncertain frames (a run of 100,000 clips would otherwise decode them all for one page); summary.json lists every
    output.
    """
    run_dir = Path(run_dir)
    summary = read_run_summary(run_dir, ReportError)
    if thumbnails < 0 or videos < 0:
        raise ReportError(f"--thumbnails and --videos must be >= 0, got {thumbnails} and {videos}")
    lo, hi = summary.get("uncertain") or DEFAULT_UNCERTAIN  # a summary written before thresholds were recorded
    roi = tuple(summary["roi"]) if summary.get("roi") else None
    shown = [summary["videos"][i] for i in shown_outputs(summary["videos"], videos)]
    keys: dict[Path, list[str]] = {}  # a video's outputs (its regions): one of them keeps the run's index of it
    for result in summary["videos"]:
        keys.setdefault(locate_video(result["video"], run_dir), []).append(run_csv(run_dir, result).stem)
    index_of = functools.cache(lambda video: index_kept_for(video, run_dir, keys[video]))  # once per video
    sections, images = [], 0
    for result in shown:
        text, count = _video_section(result, run_dir, index_of, roi, (lo, hi), thumbnails)
        sections.append(text)
        images += count
    overview = _overview(shown, _multiclass(summary))
    if left := len(summary["videos"]) - len(shown):
        overview += (f'<p class="sub">{left:,} more outputs with fewer uncertain frames are not shown (--videos '
                     f"{videos}); summary.json lists every one</p>")
    title = f"Frame labels: {html.escape(run_dir.name or str(run_dir))}"
    page = _PAGE.format(
        title=title, checkpoint=html.escape(summary["checkpoint"]), backend=html.escape(summary["backend"]),
        roi=", ".join(_region_text(r) for r in summary.get("regions") or [roi]) if roi else "checkpoint default",
        cascade=_cascade_note(summary, lo, hi), overview=overview,
        sections="\n".join(sections),
        positive=POSITIVE_COLOR, uncertain=UNCERTAIN_COLOR, labelled=LABEL_COLOR)
    path = Path(out) if out is not None else run_dir / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, page)
    return Report(path, len(summary["videos"]), images, len(shown))


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body {{ margin: 0; background: #f3f4f6; color: #1f2328; font: 14px/1.5 system-ui, -apple-system, "Segoe UI",
         "DejaVu Sans", sans-serif; }}
  main {{ max-width: 1280px; margin: 0 auto; padding: 24px 28px 48px; }}
  h1 {{ font-size: 24px; margin: 0 0 4px; }}
  h2 {{ font-size: 19px; margin: 0; }}
  h3 {{ font-size: 15px; margin: 22px 0 10px; display: flex; align-items: center; gap: 8px; }}
  h3 small {{ color: #656d76; font-weight: normal; }}
  .sub, .path {{ color: #656d76; margin: 0 0 12px; word-break: break-all; }}
  .cascade {{ background: #fff; border-left: 4px solid {uncertain}; padding: 10px 14px; border-radius: 6px;
             margin: 12px 0 18px; box-shadow: 0 1px 2px rgba(0,0,0,.06); }}
  table.overview {{ border-collapse: collapse; width: 100%; background: #fff; border-radius: 8px; overflow: hidden;
                   box-shadow: 0 1px 2px rgba(0,0,0,.06); margin-bottom: 22px; }}
  .overview th, .overview td {{ padding: 7px 12px; text-align: right; border-bottom: 1px solid #eaecef; }}
  .overview th:first-child, .overview td:first-child, .overview th:last-child, .overview td:last-child
    {{ text-align: left; }}
  .overview th {{ background: #f6f8fa; font-weight: 600; }}
  section.video {{ background: #fff; border-radius: 10px; padding: 18px 22px 22px; margin: 0 0 22px;
                  box-shadow: 0 1px 3px rgba(0,0,0,.08); }}
  .cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 10px;
           margin: 4px 0 14px; }}
  .card {{ background: #f6f8fa; border-radius: 8px; padding: 8px 12px; }}
  .card span {{ display: block; color: #656d76; font-size: 12px; }}
  .card b {{ font-size: 18px; }}
  img.timeline {{ width: 100%; height: auto; display: block; border: 1px solid #eaecef; border-radius: 6px; }}
  .grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(290px, 1fr)); gap: 12px; }}
  figure {{ margin: 0; background: #f6f8fa; border-radius: 6px; overflow: hidden; border-top: 3px solid; }}
  figure.positive {{ border-color: {positive}; }}
  figure.uncertain {{ border-color: {uncertain}; }}
  figure.labelled {{ border-color: {labelled}; }}
  figure img {{ width: 100%; height: auto; display: block; }}
  figcaption {{ font-size: 12px; color: #444c56; padding: 4px 8px; font-variant-numeric: tabular-nums; }}
  .dot {{ width: 11px; height: 11px; border-radius: 50%; display: inline-block; }}
  .dot.positive {{ background: {positive}; }}
  .dot.uncertain {{ background: {uncertain}; }}
  .dot.labelled {{ background: {labelled}; }}
  .error, .bad {{ color: #b42318; }}
  .none {{ color: #8c959f; margin: 0; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
<p class="sub">checkpoint {checkpoint} &middot; backend {backend} &middot; region {roi}</p>
<div class="cascade">{cascade}</div>
{overview}
{sections}
</main>
</body>
</html>
"""
