"""A `foldedcnn run` folder read back: its summary.json, its CSVs as arrays and where its videos are, for the
report and the frames export."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FoldedCNNError
from ._frame_labels import is_multiclass


@dataclass(frozen=True)
class FrameLabels:
    """One video's CSV as arrays (N,): frame index, time, score, label (class names), positive (a certain
    non-first label), uncertain."""

    class_names: list[str]
    frame: np.ndarray
    time_s: np.ndarray
    score: np.ndarray
    label: np.ndarray
    positive: np.ndarray
    uncertain: np.ndarray

    @property
    def multiclass(self) -> bool:
        return is_multiclass(self.class_names)


def read_labels(csv_path: str | os.PathLike) -> FrameLabels:
    """Parse a CSV written by `foldedcnn run` (frame, time_s, p_<class>..., score, label, uncertain)."""
    with open(csv_path, newline="") as f:
        rows = csv.reader(f)
        head = next(rows)
        body = list(rows)
    names = [c[2:] for c in head[2:-3]]
    frame = np.array([int(r[0]) for r in body], dtype=np.int64)
    time_s = np.array([float(r[1]) for r in body])
    score = np.array([float(r[-3]) for r in body])
    label = np.array([r[-2] for r in body], dtype=object)
    uncertain = np.array([r[-1] == "1" for r in body], dtype=bool)
    positive = (label != names[0]) & ~uncertain
    return FrameLabels(names, frame, time_s, score, label, positive, uncertain)


def locate_video(recorded: str, run_dir: Path) -> Path:
    """A video path summary.json recorded (relative to where `run` ran): as is if it exists, else the file of that
    name beside the run's files (a run folder copied with its videos)."""
    path = Path(recorded)
    return path if path.exists() or not (run_dir / path.name).exists() else run_dir / path.name


def read_run_summary(run_dir: Path, error: type[FoldedCNNError] = FoldedCNNError) -> dict:
    """RUN_DIR's summary.json (RUN_DIR: the --out of `foldedcnn run`); `error` naming the fix when it has none."""
    path = run_dir / "summary.json"
    if not path.is_file():
        raise error(f"{run_dir} has no summary.json: pass the --out folder of a `foldedcnn run`")
    return json.loads(path.read_text())


def run_csv(run_dir: Path, result: dict) -> Path:
    """Where an output's CSV is: beside summary.json, where a run writes it (a copied run folder too)."""
    return run_dir / Path(result["csv"]).name
