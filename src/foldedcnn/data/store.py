"""On-disk format of prepared data sets: DIR/{train,val,test}.npz (images uint8 (N, 3, H, W), labels int64
(N,), optional extra arrays) and DIR/meta.json (class_names and provenance). No pickle: np.load runs
with allow_pickle=False."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import torch

from .types import DataError, LabelledImages


def save_split(out_dir: str | Path, split: str, images: np.ndarray, labels: np.ndarray, **extra: np.ndarray) -> Path:
    """Write DIR/split.npz with images (N, 3, H, W) uint8, labels (N,) int64 and `extra` arrays; returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{split}.npz"
    np.savez(path, images=np.asarray(images, np.uint8), labels=np.asarray(labels, np.int64), **extra)
    return path


def write_meta(out_dir: str | Path, meta: dict) -> Path:
    """Write DIR/meta.json (must hold class_names)."""
    if "class_names" not in meta:
        raise DataError("meta.json needs class_names")
    path = Path(out_dir) / "meta.json"
    path.write_text(json.dumps(meta, indent=2) + "\n")
    return path


def load_split(data_dir: str | Path, split: str) -> LabelledImages:
    """Read DIR/split.npz and DIR/meta.json as a LabelledImages."""
    data_dir = Path(data_dir)
    path = data_dir / f"{split}.npz"
    if not path.is_file() or not (data_dir / "meta.json").is_file():
        raise DataError(f"{data_dir} holds no prepared {split} split (needs {path.name} and meta.json); make one "
                        "with `foldedcnn data game` or `foldedcnn data video`")
    remake = "make it again with `foldedcnn data game` or `foldedcnn data video`"
    try:
        meta = json.loads((data_dir / "meta.json").read_text())
        class_names = [str(c) for c in meta["class_names"]]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{data_dir / 'meta.json'} is damaged ({type(exc).__name__}: {exc}); {remake}") from None
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path}: it is truncated or damaged ({type(exc).__name__}: {exc}); "
                        f"{remake}") from None
    source = {k: meta[k] for k in ("video", "frame_size", "roi", "size", "stride") if k in meta}
    if images.dtype != np.uint8 or labels.dtype.kind not in "iu":
        raise DataError(f"{path} holds {images.dtype} images and {labels.dtype} labels, expected uint8 and integers; "
                        f"{remake}")
    return LabelledImages(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)),
                          class_names, f"{data_dir.name}/{split}", source)
