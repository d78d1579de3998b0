"""NoScope-style binary video task: "is the object in this region?" for every frame.

Labels come from a NoScope labels CSV (columns frame, object_name and, in NoScope's format, the box
xmin, ymin, xmax, ymax in frame pixels: a frame is positive if one of its rows names the object and,
when boxes are given, at least `min_overlap` of that box's area lies inside the region) or from an
oracle: OpenCV MOG2 background subtraction on the region, positive when the foreground covers at
least `threshold` of it. Frames are cropped to the region and resized to 50x50.

Splits: "contiguous" (default) makes train/val/test one chunk of consecutive frames each, so
near-identical neighbours meet only at two boundaries; "blocks" cuts the video into blocks of
`block_frames` consecutive kept frames and deals them out to train/val/test in proportion
(T V T E T ... for 60/20/20), so each split sees every part of the video — for objects that appear
in only one stretch of it — at the price of a boundary (two near-identical neighbours) per block.
A split without positives or without negatives is refused when saving unless allowed: a model
trained or tested on it says nothing. Saved in the store.py format.
"""

from __future__ import annotations

import csv
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .store import save_split, write_meta
from .types import DataError
from .video import check_roi, iter_frames, probe_video, shown_orientation

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)
SPLIT_MODES = ("contiguous", "blocks")
BOX_COLUMNS = ("xmin", "ymin", "xmax", "ymax")
DEFAULT_MIN_OVERLAP = 0.5


def box_overlap(box: tuple[float, float, float, float], roi: tuple[int, int, int, int]) -> float:
    """Share of the area of `box` (xmin, ymin, xmax, ymax) inside region `roi` (x, y, w, h), in [0, 1]."""
    xmin, ymin, xmax, ymax = box
    x, y, w, h = roi
    inter = max(0.0, min(xmax, x + w) - max(xmin, x)) * max(0.0, min(ymax, y + h) - max(ymin, y))
    return inter / ((xmax - xmin) * (ymax - ymin))


def read_noscope_labels(csv_path: str | Path, object_name: str, num_frames: int,
                        roi: tuple[int, int, int, int] | None = None, min_overlap: float = 0.5) -> np.ndarray:
    """Bool (num_frames,): frame i is positive if some CSV row has frame == i and object_name == `object_name`
    and, when `roi` is given and the CSV has box columns (xmin, ymin, xmax, ymax), at least `min_overlap`
    (in (0, 1]) of that box's area lies inside `roi` (x, y, w, h)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"labels CSV not found: {csv_path}")
    if not 0.0 < min_overlap <= 1.0:
        raise DataError(f"min_overlap must be in (0, 1], got {min_overlap}")
    labels = np.zeros(num_frames, dtype=bool)
    with csv_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"frame", "object_name"} <= set(reader.fieldnames):
            raise DataError(f"{csv_path} is not a NoScope labels CSV: it needs columns frame and object_name, "
                            f"has {reader.fieldnames}")
        use_boxes = roi is not None and set(BOX_COLUMNS) <= set(reader.fieldnames)
        for row in reader:
            try:
                frame = int(float(row["frame"]))
                box = tuple(float(row[c]) for c in BOX_COLUMNS) if use_boxes else None
            except (TypeError, ValueError):
                raise DataError(f"{csv_path}: line {reader.line_num}: frame or box is not a number") from None
            if row["object_name"] != object_name or not 0 <= frame < num_frames:
                continue
            if box is not None:
                if box[2] <= box[0] or box[3] <= box[1]:
                    raise DataError(f"{csv_path}: line {reader.line_num}: box {box} has no area (xmax <= xmin or "
                                    "ymax <= ymin)")
                if box_overlap(box, roi) < min_overlap:
                    continue
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


# How images are made from frames (data.video.iter_frames with a size: region cropped, scaled and converted in
# one pass); recorded in a data set's meta.json so a cached set made another way is made again.
CONVERSION = "region-resized-1"


@dataclass
class VideoTask:
    """A labelled region of a video: images uint8 (N, 3, h, w), labels int64 (N,), frame_index int64 (N,),
    `split_of` int64 (N,): 0, 1, 2 for the train, val, test split of each frame."""

    images: np.ndarray
    labels: np.ndarray
    frame_index: np.ndarray
    split_of: np.ndarray
    class_names: list[str]
    meta: dict = field(default_factory=dict)

    def split(self, name: str) -> np.ndarray:
        """Indices (in frame order) of split `name` ('train', 'val' or 'test')."""
        return np.flatnonzero(self.split_of == SPLITS.index(check_split(name)))

    def balance(self) -> dict[str, dict[str, int]]:
        """Per split: images, positives, negatives."""
        out = {}
        for name in SPLITS:
            y = self.labels[self.split(name)]
            out[name] = {"images": int(y.size), "positive": int(y.sum()), "negative": int(y.size - y.sum())}
        return out

    def check_balance(self) -> None:
        """Raise DataError when a split has no positive or no negative frame, naming it and the fixes."""
        for name, b in self.balance().items():
            for kind in ("positive", "negative"):
                if b[kind] == 0:
                    blocks = self.meta.get("block_frames")
                    interleave = (f"try fewer --block-frames than {blocks} (smaller blocks dealt out more evenly)"
                                  if self.meta.get("split_mode") == "blocks" and blocks else
                                  "try --split-mode blocks --block-frames N (splits interleaved through the video)")
                    raise DataError(
                        f"the {name} split has no {kind} frames ({b['positive']} positive, {b['negative']} negative "
                        f"of {b['images']}), so a model trained or tested on it means nothing: move the region, "
                        f"{interleave}, or pass --allow-empty-class to keep it anyway")


def check_split(split: str) -> str:
    """Return `split` if it is 'train', 'val' or 'test', else raise DataError."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split


def _check_fractions(fractions: tuple[float, float, float]) -> None:
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise DataError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")


def split_bounds(n: int, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> tuple[int, int]:
    """Boundaries of contiguous train/val/test chunks of n items with the given fractions."""
    _check_fractions(fractions)
    a = round(n * fractions[0])
    return a, a + round(n * fractions[1])


def assign_splits(n: int, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS, mode: str = "contiguous",
                  block_frames: int | None = None) -> np.ndarray:
    """Split ids (n,) in {0, 1, 2} (train, val, test) of n consecutive items.

    "contiguous": three chunks (split_bounds). "blocks": blocks of `block_frames` consecutive items, each
    given to the split furthest behind its share of the blocks so far (60/20/20 deals T V T E T, repeated).
    """
    _check_fractions(fractions)
    if mode == "contiguous":
        if block_frames is not None:
            raise DataError("block_frames (--block-frames) applies to split mode 'blocks' (--split-mode blocks)")
        a, b = split_bounds(n, fractions)
        return np.repeat(np.arange(3), [a, b - a, n - b])
    if mode != "blocks":
        raise DataError(f"split mode must be one of {', '.join(SPLIT_MODES)}, got {mode!r}")
    if block_frames is None or block_frames < 1:
        raise DataError(f"split mode 'blocks' needs block_frames >= 1 (--block-frames N), got {block_frames}")
    counts = np.zeros(3)
    ids = []
    for b in range(-(-n // block_frames)):
        split = int(np.argmax(np.asarray(fractions) * (b + 1) - counts))
        counts[split] += 1
        ids.append(split)
    return np.repeat(np.asarray(ids, dtype=np.int64), block_frames)[:n]


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
    split_mode: str = "contiguous",
    block_frames: int | None = None,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
) -> VideoTask:
    """Crop region `roi` (x, y, w, h) of every `stride`-th frame (as shown: a phone's portrait video turned, as
    players show it) to `size` (h, w), label it and split it.

    With `labels_csv` the labels are the CSV's (a box counts when >= `min_overlap` of its area is inside
    the region); otherwise the MOG2 oracle, first fed the first `warmup` frames so it starts with a
    background model, marks a frame positive when the foreground covers >= `threshold` of the region.
    `split_mode` and `block_frames` (kept frames per block) are those of assign_splits.
    """
    assign_splits(1, fractions, split_mode, block_frames)  # bad split options fail before decoding
    info = probe_video(path)
    width, height = shown_orientation(path).shown_size(info.width, info.height)  # a portrait video's: turned
    roi = check_roi(roi, width, height)
    oracle = None
    if labels_csv is None:
        oracle = Mog2Oracle()
        with closing(iter_frames(path, roi=roi)) as frames:
            for frame in frames:
                if frame.index >= warmup:
                    break
                oracle.fraction(frame.rgb)
    # the images: the job's conversion (region cropped, scaled and converted in one pass), so a model sees
    # the same pixels in training and labelling; the oracle looks at the region at full resolution
    kept = list(iter_frames(path, stride, roi=roi, size=size))
    images = [f.rgb.transpose(2, 0, 1) for f in kept]
    frame_index = np.asarray([f.index for f in kept], dtype=np.int64)
    fg = [] if oracle is None else [oracle.fraction(f.rgb) for f in iter_frames(path, stride, roi=roi)]
    if labels_csv is not None:
        positive = read_noscope_labels(labels_csv, object_name, int(frame_index[-1]) + 1, roi,
                                       min_overlap)[frame_index]
        labeller = {"labels_csv": str(labels_csv), "object_name": object_name, "min_overlap": min_overlap}
    else:
        positive = np.asarray(fg) >= threshold
        labeller = {"oracle": "mog2", "threshold": threshold, "warmup": warmup, "history": 500, "var_threshold": 16}
    meta = {"video": str(path), "frame_size": [width, height], "roi": list(roi), "size": list(size),
            "stride": stride, "conversion": CONVERSION,
            "fps": info.fps, "fractions": list(fractions), "split_mode": split_mode, "block_frames": block_frames,
            **labeller}
    return VideoTask(
        images=np.stack(images),
        labels=positive.astype(np.int64),
        frame_index=frame_index,
        split_of=assign_splits(len(frame_index), fractions, split_mode, block_frames),
        class_names=[f"no {object_name}", object_name],
        meta=meta,
    )


def save_video_task(task: VideoTask, out_dir: str | Path, allow_empty_class: bool = False) -> Path:
    """Write DIR/{train,val,test}.npz (images, labels, frame_index) and DIR/meta.json; return DIR.

    A split with no positive or no negative frame raises DataError (nothing written) unless `allow_empty_class`.
    """
    if not allow_empty_class:
        task.check_balance()
    for name in SPLITS:
        s = task.split(name)
        save_split(out_dir, name, task.images[s], task.labels[s], frame_index=task.frame_index[s])
    write_meta(out_dir, {**task.meta, "class_names": task.class_names, "balance": task.balance()})
    return Path(out_dir)
