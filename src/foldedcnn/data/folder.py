"""ImageFolder directories: ROOT/CLASS/.../IMAGE (torchvision's ImageFolder's files), read with Pillow; and the
reverse, export."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..fsio import files_under
from ._region import resize_rgb
from .types import DataError, LabelledImages

# torchvision's ImageFolder's (IMG_EXTENSIONS): a folder it reads gives the same images here
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}


SPLITS = ("train", "val", "test")


def load_folder(root: str | Path, class_names: list[str] | None = None,
                size: tuple[int, int] | None = None) -> LabelledImages:
    """Images under root/CLASS/, at any depth as torchvision's ImageFolder takes them (IMAGE_SUFFIXES, in path
    order; hidden files and folders left out), as uint8 (N, 3, H, W): all of one size, or each
    resized to `size` (H, W) (area averaging where it shrinks, bilinear where it grows: data._region.resize_rgb);
    labels index `class_names` (default: the sorted class folders of `root`), so splits that lack a class still
    agree on the others'."""
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    present = _class_folders(root)
    if not present:
        raise DataError(f"{root} has no class subfolders (expected ROOT/CLASS/IMAGE.png)")
    names = present if class_names is None else list(class_names)
    if unknown := sorted(set(present) - set(names)):
        raise DataError(f"{root} has class folders {unknown[:5]} that are not among the classes {names[:10]}")
    arrays, labels = [], []
    for label, name in enumerate(names):
        for file in files_under(root / name, IMAGE_SUFFIXES):
            try:
                with Image.open(file) as im:
                    rgb = np.asarray(im.convert("RGB"))
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"cannot read image {file} ({exc})") from None
            arrays.append(rgb if size is None or rgb.shape[:2] == size else resize_rgb(rgb, size))
            labels.append(label)
    if not arrays:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}'s class folders")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        sizes = ", ".join(f"{h}x{w}" for h, w, _ in sorted(shapes)[:3])
        raise DataError(f"{root}: images have different sizes (H x W: {sizes}, ...); add ?size=N (N x N) or "
                        "?height=H&width=W to the folder: spec to resize each to the model's input")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return LabelledImages(images, torch.tensor(labels, dtype=torch.int64), list(names), root.name)


def load_split_folder(root: str | Path, split: str, classes: Sequence[str] | None = None,
                      size: tuple[int, int] | None = None) -> LabelledImages:
    """Split `split` of root/{train,val,test}/CLASS/IMAGE.png, its labels indexing `classes` (default: the class
    folders of all the splits together, sorted), so every split of one folder labels a class alike even where
    one split lacks it. `classes` must name every class folder of the splits (a typo or a forgotten class
    raises DataError). `size` (H, W): resize every image to it (see load_folder)."""
    root = Path(root)
    if not (root / split).is_dir():
        found = [s for s in SPLITS if (root / s).is_dir()]
        has = f"it has {', '.join(found)}" if found else f"expected {root}/{{train,val,test}}/CLASS/IMAGE.png"
        raise DataError(f"{root} has no {split} split ({root / split} is missing; {has})")
    found = sorted({n for s in SPLITS if (root / s).is_dir() for n in _class_folders(root / s)})
    if classes is not None and sorted(classes) != found:
        raise DataError(f"classes={','.join(classes)} must name exactly the class folders of {root}: "
                        f"{','.join(found)}")
    return load_folder(root / split, list(classes) if classes is not None else found, size)


def _class_folders(root: Path) -> list[str]:
    """The class folders of `root`: its subfolders but hidden ones (Jupyter's .ipynb_checkpoints, say)."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def export_folder(data: LabelledImages, root: str | Path) -> Path:
    """Write `data` as root/CLASS/NNNNNN.png (class names made path-safe); returns root."""
    from PIL import Image

    root = Path(root)
    safe = [n.replace("/", "_") or "_" for n in data.class_names]
    for name in set(safe):
        (root / name).mkdir(parents=True, exist_ok=True)
    pixels = data.images.permute(0, 2, 3, 1).numpy()
    for i, (img, y) in enumerate(zip(pixels, data.labels.tolist(), strict=True)):
        Image.fromarray(img).save(root / safe[y] / f"{i:06d}.png")
    return root
