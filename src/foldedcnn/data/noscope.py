"""NoScope-style binary video task: "is the object in this region?" for every frame.

Labels come from a NoScope labels CSV (columns frame, object_name, ...; a frame is positive if
any of its rows names the object) or from an oracle: OpenCV MOG2 background subtraction on the
region, positive when the foreground covers at least `threshold` of it. Frames are cropped to the
region and resized to 50x50; train/val/test are contiguous chunks of consecutive frames (so that
near-identical neighbours never straddle two splits). Saved in the store.py format.
"""

from __future__ import annotations

import csv
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .store import save_split, write_meta
from .types import DataError
from .video import check_roi, iter_frames, probe_video, resize_region

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)


def read_noscope_labels(csv_path: str | Path, object_name: str, num_frames: int) -> np.ndarray:
    """Bool (num_frames,): frame i is positive if some CSV row has frame == i and object_name == `object_name`."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"labels CSV not found: {csv_path}")
    labels = np.zeros(num_frames, dtype=bool)
    with csv_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"frame", "object_name"} <= set(reader.fieldnames):
            raise DataError(f"{csv_path} is not a NoScope labels CSV: it needs columns frame and object_name, "
                            f"has {reader.fieldnames}")
        for row in reader:
            try:
                frame = int(float(row["frame"]))
            except ValueError:
                raise DataError(f"{csv_path}: line {reader.line_num}: frame {row['frame']!r} is not a number") from None
            if row["object_name"] == object_name and 0 <= frame < num_frames:
                labels[frame] = True
    return labels


class Mog2Oracle:
    """Foreground fraction of a region from OpenCV MOG2 background subtraction (shadows ignored).

    `fraction(crop)` takes the region's pixels (h, w, 3) uint8 RGB in frame order and returns the
    share of pixels that are foreground after a 3x3 morphological opening (removes speckle).
    """

    def __init__(self, history: int = 500, var_threshold: float = 16.0) -> None:
        import cv2

        self._cv2 = cv2
        self._mog = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=var_threshold,
                                                       detectShadows=True)
        self._kernel = np.ones((3, 3), np.uint8)

    def fraction(self, crop: np.ndarray) -> float:
        mask = (self._mog.apply(np.ascontiguousarray(crop)) == 255).astype(np.uint8)
        return float(self._cv2.morphologyEx(mask, self._cv2.MORPH_OPEN, self._kernel).mean())


@dataclass
class VideoTask:
    """A labelled region of a video: images uint8 (N, 3, h, w), labels int64 (N,), frame_index int64 (N,),
    `bounds` the split boundaries (train = [0, bounds[0]), val = [bounds[0], bounds[1]), test = the rest)."""

    images: np.ndarray
    labels: np.ndarray
    frame_index: np.ndarray
    bounds: tuple[int, int]
    class_names: list[str]
    meta: dict = field(default_factory=dict)

    def split(self, name: str) -> slice:
        """The slice of split `name` ('train', 'val' or 'test')."""
        a, b = self.bounds
        return {"train": slice(0, a), "val": slice(a, b), "test": slice(b, len(self.labels))}[check_split(name)]

    def balance(self) -> dict[str, dict[str, int]]:
        """Per split: images, positives, negatives."""
        out = {}
        for name in SPLITS:
            y = self.labels[self.split(name)]
            out[name] = {"images": int(y.size), "positive": int(y.sum()), "negative": int(y.size - y.sum())}
        return out


def check_split(split: str) -> str:
    """Return `split` if it is 'train', 'val' or 'test', else raise DataError."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split


def split_bounds(n: int, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> tuple[int, int]:
    """Boundaries of contiguous train/val/test chunks of n items with the given fractions."""
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise DataError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    a = round(n * fractions[0])
    return a, a + round(n * fractions[1])


def build_video_task(
    path: str | Path,
    roi: tuple[int, int, int, int],
    *,
    labels_csv: str | Path | None = None,
    object_name: str = "person",
    size: tuple[int, int] = (50, 50),
    threshold: float = 0.02,
    warmup: int = 100,
    stride: int = 1,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
) -> VideoTask:
    """Crop region `roi` (x, y, w, h) of every `stride`-th frame to `size` (h, w) and label it.

    With `labels_csv` the labels are the CSV's; otherwise the MOG2 oracle, first fed the first
    `warmup` frames so it starts with a background model, marks a frame positive when the
    foreground covers >= `threshold` of the region.
    """
    info = probe_video(path)
    roi = check_roi(roi, info.width, info.height)
    oracle = None
    if labels_csv is None:
        oracle = Mog2Oracle()
        with closing(iter_frames(path, roi=roi)) as frames:
            for frame in frames:
                if frame.index >= warmup:
                    break
                oracle.fraction(frame.rgb)
    images, index, fg = [], [], []
    for frame in iter_frames(path, stride, roi=roi):  # the job's path: region-only conversion, same pixels
        images.append(resize_region(frame.rgb, size))
        index.append(frame.index)
        if oracle is not None:
            fg.append(oracle.fraction(frame.rgb))
    frame_index = np.asarray(index, dtype=np.int64)
    if labels_csv is not None:
        positive = read_noscope_labels(labels_csv, object_name, int(frame_index[-1]) + 1)[frame_index]
        labeller = {"labels_csv": str(labels_csv), "object_name": object_name}
    else:
        positive = np.asarray(fg) >= threshold
        labeller = {"oracle": "mog2", "threshold": threshold, "warmup": warmup, "history": 500, "var_threshold": 16}
    meta = {"video": str(path), "roi": list(roi), "size": list(size), "stride": stride,
            "fps": info.fps, "fractions": list(fractions), **labeller}
    return VideoTask(
        images=np.stack(images),
        labels=positive.astype(np.int64),
        frame_index=frame_index,
        bounds=split_bounds(len(frame_index), fractions),
        class_names=[f"no {object_name}", object_name],
        meta=meta,
    )


def save_video_task(task: VideoTask, out_dir: str | Path) -> Path:
    """Write DIR/{train,val,test}.npz (images, labels, frame_index) and DIR/meta.json; return DIR."""
    for name in SPLITS:
        s = task.split(name)
        save_split(out_dir, name, task.images[s], task.labels[s], frame_index=task.frame_index[s])
    write_meta(out_dir, {**task.meta, "class_names": task.class_names, "bounds": list(task.bounds),
                         "balance": task.balance()})
    return Path(out_dir)
