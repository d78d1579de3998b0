"""`foldedcnn frames`: the frames a `foldedcnn run` flagged, as image files for the reference model.

NoScope's cascade sends the frames the specialized model is unsure of to an expensive reference model (a
detector); this writes them out, OUT/KEY/FRAME.jpg (KEY: the run's CSV name, FRAME the video's frame index),
with OUT/frames.csv listing each image beside its video, frame, time, label and score, so the reference model's
answers can be joined back. Each video is decoded once for all its regions; only the chosen frames are
converted. A rerun skips the images already written, so an interrupted export resumes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data._region import full_rgb, region_rgb
from ..data.video import decoded_frames_at
from ..errors import FoldedCNNError
from ..fsio import atomic_path
from ._chunk_store import csv_lines, index_kept_for, write_csv
from ._job_video import by_video
from ._labels_csv import FrameLabels, locate_video, read_labels, read_run_summary, run_csv

WHICH = ("uncertain", "certain", "positive", "all")
CROPS = ("region", "frame")
FORMATS = ("jpg", "png")
INDEX_COLUMNS = ["image", "video", "region", "frame", "time_s", "label", "score", "uncertain"]


@dataclass
class FramesExport:
    """What export_frames wrote: `images` listed in `index` (`written` of them new), per video or region output
    of the run; `failed`: the outputs that could not be exported, with why; `skipped`: those the run left out
    (--min-age), with why."""

    out: Path
    index: Path
    images: int = 0
    written: int = 0
    outputs: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Output:
    """One CSV of the run (a video, or one region of it) and the rows chosen from it."""

    key: str
    path: Path  # the video
    region: int | None
    roi: tuple[int, int, int, int] | None
    labels: FrameLabels
    rows: np.ndarray  # indices into labels' arrays


def chosen(labels: FrameLabels, which: str) -> np.ndarray:
    """Row indices of `labels` to export: "uncertain" (for the reference model), "certain" (the rest: a HUD reader's
    labelled frames), "positive" (certain, not the first class) or "all"; never a frame that did not decode (its
    packets are damaged: nothing to export)."""
    if which not in WHICH:
        raise FoldedCNNError(f"which={which!r}: choose one of {', '.join(WHICH)}")
    mask = {"uncertain": labels.uncertain, "certain": labels.certain,
            "positive": labels.positive, "all": labels.decoded}[which]
    return np.flatnonzero(mask)


def export_frames(run_dir: str | os.PathLike, out: str | os.PathLike, *, which: str = "uncertain",
                  crop: str = "region", image_format: str = "jpg", progress: bool = False) -> FramesExport:
    """Write the `which` frames of every video of RUN_DIR (the --out of `foldedcnn run`) under `out`: the region
    the run labelled (`crop="region"`, (h, w, 3) as decoded, not resized) or the whole frame, as JPEG (quality
    95) or PNG; and `out`/frames.csv. A video the run failed on, or whose CSV or file is missing, is listed in
    `failed`, one the run left out (--min-age) in `skipped`. Raises FoldedCNNError for a folder without
    summary.json or a bad option."""
    run_dir, out = Path(run_dir), Path(out)
    if crop not in CROPS or image_format not in FORMATS:
        raise FoldedCNNError(f"crop={crop!r}, format={image_format!r}: choose crop from {', '.join(CROPS)} and format "
                             f"from {', '.join(FORMATS)}")
    summary = read_run_summary(run_dir)
    result = FramesExport(out, out / "frames.csv")
    outputs = []
    for video in summary["videos"]:
        name = video["video"] if video.get("region") is None else f"{video['video']} region {video['region']}"
        csv_path = run_csv(run_dir, video)
        if video.get("error"):
            result.failed.append(f"{name}: the run failed on it ({video['error']})")
        elif video.get("skipped"):
            result.skipped.append(f"{name}: the run left it out ({video['skipped']})")
        elif not csv_path.is_file():
            result.failed.append(f"{name}: its CSV {csv_path.name} is missing from {run_dir}")
        else:
            labels = read_labels(csv_path)
            roi = tuple(video["roi"]) if video.get("roi") else None
            outputs.append(_Output(csv_path.stem, locate_video(video["video"], run_dir), video.get("region"), roi,
                                   labels, chosen(labels, which)))
    lines = []
    with tqdm(total=sum(o.rows.size for o in outputs), unit="frame", disable=not progress, dynamic_ncols=True) as bar:
        for group in by_video(outputs):
            video = group[0].path
            try:
                for line, new in _export_video(video, group, run_dir, out, crop, image_format):
                    lines.append(line)
                    result.written += new
                    bar.update()
            except FoldedCNNError as exc:
                result.failed.append(f"{video}: {exc}")
            result.outputs += len(group)
    result.images = len(lines)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(result.index, INDEX_COLUMNS, [csv_lines(lines)])
    return result


def _export_video(video: Path, group: list[_Output], run_dir: Path, out: Path, crop: str, image_format: str
                  ) -> Iterator[tuple[list[object], bool]]:
    """Decode `video` once (seeking with the index the run in `run_dir` kept of it, if any) and write the chosen
    frames of each of its outputs; yields (index row, newly written)."""
    from PIL import Image

    wanted: dict[int, list[tuple[_Output, int]]] = {}
    for o in group:
        for row in o.rows:
            wanted.setdefault(int(o.labels.frame[row]), []).append((o, int(row)))
    for o in group:
        (out / o.key).mkdir(parents=True, exist_ok=True)
    found = 0
    for index, _, frame in decoded_frames_at(video, wanted, index_kept_for(video, run_dir, [o.key for o in group])):
        found += 1
        whole = None
        for o, row in wanted[index]:
            image = out / o.key / f"{index:08d}.{image_format}"
            new = not image.exists()
            if new:
                if crop == "region" and o.roi is not None:
                    rgb = region_rgb(frame, o.roi)
                else:
                    whole = full_rgb(frame) if whole is None else whole
                    rgb = whole
                with atomic_path(image) as tmp:
                    Image.fromarray(rgb).save(tmp, format="JPEG" if image_format == "jpg" else "PNG", quality=95)
            labels = o.labels
            yield [image.relative_to(out).as_posix(), str(video), o.region or "", index, f"{labels.time_s[row]:.6f}",
                   labels.label[row], f"{labels.score[row]:.6f}", int(labels.uncertain[row])], new
    if found < len(wanted):
        raise FoldedCNNError(f"{len(wanted) - found} of the frames its CSV lists are past its end or do not decode "
                             "(another file at that path since the run?)")
