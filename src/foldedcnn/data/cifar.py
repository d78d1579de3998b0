"""CIFAR-10 / CIFAR-100 from the standard python archive on disk (cifar-10-batches-py, cifar-100-python).

Those batches are pickles. They are read with a restricted Unpickler that can build only plain
containers (dict, list, str, bytes, int) and numpy arrays (numpy's array reconstruction helpers
and dtype), so a file cannot run code: any other global raises DataError. A .tar.gz of the archive
works too (members are read in memory, never extracted).
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from .types import DataError, LabelledImages

CIFAR_VAL_SHARE = 10  # the last tenth of the training images (5,000 of 50,000) is the validation split
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "bytes"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise DataError(f"refusing to load {module}.{name} from a CIFAR batch (only data is allowed)")
        return super().find_class(module, name)


def safe_load_batch(raw: bytes, what: str = "CIFAR batch") -> dict:
    """Unpickle one CIFAR batch allowing data types only; keys are returned as str."""
    try:
        obj = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except DataError:
        raise
    except Exception as exc:  # a truncated or foreign file: any unpickling failure is a bad file
        raise DataError(f"{what} is not a CIFAR python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{what} is not a CIFAR python batch (holds {type(obj).__name__}, not dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _reader(path: Path):
    """A function name -> bytes over the archive directory or .tar.gz at `path`."""
    if path.is_dir():
        def read(name: str) -> bytes:
            matches = sorted(path.rglob(name))
            if not matches:
                raise DataError(f"{name} not found under {path}")
            return matches[0].read_bytes()
        return read
    if path.is_file() and tarfile.is_tarfile(path):
        tar = tarfile.open(path)
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

        def read_tar(name: str) -> bytes:
            if name not in members:
                raise DataError(f"{name} not found in {path}")
            return tar.extractfile(members[name]).read()
        return read_tar
    raise DataError(f"CIFAR archive not found: {path} (a cifar-10-batches-py / cifar-100-python folder or its .tar.gz)")


def _images(batch: dict, what: str) -> np.ndarray:
    data = np.asarray(batch.get("data"))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{what}: data must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    return data.reshape(-1, 3, 32, 32)


def load_cifar(path: str | Path, split: str, *, classes: int = 10) -> LabelledImages:
    """CIFAR-`classes` (10 or 100, fine labels) split as uint8 (N, 3, 32, 32): train = the first 45,000
    training images, val = the last 5,000, test = the test batch."""
    if classes not in (10, 100):
        raise DataError(f"CIFAR has 10 or 100 classes, got {classes}")
    path = Path(path)
    read = _reader(path)
    if classes == 10:
        names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
        meta_name, label_key, names_key = "batches.meta", "labels", "label_names"
    else:
        names = ["test"] if split == "test" else ["train"]
        meta_name, label_key, names_key = "meta", "fine_labels", "fine_label_names"
    images, labels = [], []
    for name in names:
        batch = safe_load_batch(read(name), f"{path}/{name}")
        images.append(_images(batch, f"{path}/{name}"))
        labels.append(np.asarray(batch.get(label_key, []), dtype=np.int64))
        if labels[-1].shape != images[-1].shape[:1]:
            raise DataError(f"{path}/{name}: {len(labels[-1])} labels for {len(images[-1])} images")
    x, y = np.concatenate(images), np.concatenate(labels)
    if split != "test":
        cut = len(x) - len(x) // CIFAR_VAL_SHARE
        x, y = (x[:cut], y[:cut]) if split == "train" else (x[cut:], y[cut:])
    meta = safe_load_batch(read(meta_name), f"{path}/{meta_name}")
    class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(names_key, [])]
    if len(class_names) != classes or (y.size and not 0 <= y.min() <= y.max() < classes):
        raise DataError(f"{path}: expected {classes} classes, meta names {len(class_names)}")
    return LabelledImages(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y), class_names,
                          f"cifar{classes}/{split}")
