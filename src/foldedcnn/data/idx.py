"""IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or raw, and Fashion-MNIST from Debian.

IDX: 2 zero bytes, a type byte (0x08 = uint8), the number of dimensions, one big-endian uint32 per
dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from .types import DataError, LabelledImages

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"]
FASHION_MNIST_VAL_SHARE = 6  # the last sixth of the training images (10,000 of 60,000) is the validation split
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
           0x0E: np.dtype(">f8")}


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in IDX file `path` (a .gz suffix means gzip), shape as the header says."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: corrupt gzip data ({exc})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(v) for v in np.frombuffer(raw[4:header], dtype=">u4"))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: header says {shape} ({expected} bytes of data), file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).is_file():
            return root / name
    raise DataError(f"{root / stem}(.gz) not found; Fashion-MNIST comes from Debian dataset-fashion-mnist "
                    "(`make system-deps`)")


def to_rgb(gray: np.ndarray, size: int | None = None) -> torch.Tensor:
    """Grey images (N, H, W) uint8 -> (N, 3, S, S) uint8 (grey repeated), zero-padded (centred) to `size` if given."""
    n, h, w = gray.shape
    if size is not None:
        if size < max(h, w):
            raise DataError(f"size {size} is smaller than the images ({h}x{w})")
        top, left = (size - h) // 2, (size - w) // 2
        gray = np.pad(gray, ((0, 0), (top, size - h - top), (left, size - w - left)))
    return torch.from_numpy(np.ascontiguousarray(gray))[:, None].expand(-1, 3, -1, -1).contiguous()


def load_fashion_mnist(split: str, *, root: str | Path = FASHION_MNIST_DIR, size: int | None = None,
                       channels: int = 3) -> LabelledImages:
    """Fashion-MNIST split as uint8 (N, 3, H, W), the grey channel repeated: train = the first 50,000 training
    images, val = the last 10,000, test = the 10,000 t10k images. `size`=32 pads to 32x32 (for the CIFAR
    ResNet). `channels` must be 3 (foldedcnn images are RGB); it exists so specs can say so."""
    if channels != 3:
        raise DataError(f"foldedcnn images have 3 channels (grey is repeated); channels must be 3, got {channels}")
    root = Path(root)
    prefix = "t10k" if split == "test" else "train"
    images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise DataError(f"{root}: images {images.shape} and labels {labels.shape} do not match")
    if split != "test":
        cut = len(images) - len(images) // FASHION_MNIST_VAL_SHARE
        images, labels = (images[:cut], labels[:cut]) if split == "train" else (images[cut:], labels[cut:])
    return LabelledImages(to_rgb(images, size), torch.from_numpy(labels.astype(np.int64)),
                          list(FASHION_MNIST_CLASSES), f"fashion-mnist/{split}")
