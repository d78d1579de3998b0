"""A `foldedcnn run` folder read back: its summary.json, its CSVs as arrays and where its videos are, for the
report and the frames export."""

from __future__ import annotations

import csv
import itertools
import json
import os
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FoldedCNNError
from ._frame_labels import is_multiclass


@dataclass(frozen=True)
class FrameLabels:
    """One video's CSV as arrays (N,): frame index, time, score, label (class names), positive (a certain
    non-first label), uncertain, decoded (False: the frame's packets are damaged; its score is nan, its label
    empty, and it is neither positive nor uncertain)."""

    class_names: list[str]
    frame: np.ndarray
    time_s: np.ndarray
    score: np.ndarray
    label: np.ndarray
    positive: np.ndarray
    uncertain: np.ndarray
    decoded: np.ndarray

    @property
    def certain(self) -> np.ndarray:
        """(N,) bool: the frames labelled for sure (decoded and not uncertain)."""
        return ~self.uncertain & self.decoded

    @property
    def multiclass(self) -> bool:
        return is_multiclass(self.class_names)


def read_labels(csv_path: str | os.PathLike) -> FrameLabels:
    """Parse a CSV written by `foldedcnn run` (frame, time_s, p_<class>..., score, label, uncertain), a line at a
    time, keeping only the columns used (not the probabilities: a day-long recording's CSV from a 111-class model
    holds gigabytes of them). Lines are split off at their first two and last three fields unless the header quotes
    a class name (it has a comma), and only at newlines (a quoted class name may hold a carriage return, which
    universal newlines would make a newline)."""
    frame, time_s, score, unsure = array("q"), array("d"), array("d"), array("b")
    label: list[str] = []
    with open(csv_path, newline="\n") as f:
        first = f.readline()
        quoted = '"' in first  # a class name with a comma, quote or newline: its fields are quoted
        records = csv.reader(itertools.chain([first], f)) if quoted else (_outer_fields(line) for line in f)
        head = next(records) if quoted else first.rstrip("\n").split(",")  # a quoted header may span lines
        names = [c[2:] for c in head[2:-3]]
        same = {name: name for name in names}  # every row's label is one of these strings, not a copy of its own
        for fields in records:
            frame.append(int(fields[0]))
            time_s.append(float(fields[1]))
            score.append(float(fields[-3] or "nan"))  # empty: a frame that did not decode
            label.append(same.get(fields[-2], fields[-2]))
            unsure.append(fields[-1].rstrip("\n") == "1")
    labels = np.array(label, dtype=object)
    uncertain = np.array(unsure, dtype=bool)
    first = np.empty(1, dtype=object)
    first[0] = names[0]  # compared as a Python string: NumPy would make it a str_, whose trailing NULs it drops
    decoded = labels != ""
    positive = (labels != first) & ~uncertain & decoded
    return FrameLabels(names, np.array(frame, dtype=np.int64), np.array(time_s), np.array(score), labels, positive,
                       uncertain, decoded)


def _outer_fields(line: str) -> list[str]:
    """A CSV line's first two and last three fields, for a line none of whose fields is quoted."""
    return [*line.split(",", 2)[:2], *line.rsplit(",", 3)[1:]]


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
