"""Fold layout: how f images share one input and how logits come back.

Order (the paper's): a contiguous batch (B, C, H, W) folds to (B/f, f*C, H, W) by a reshape;
image j of group i is batch index i*f + j and occupies channels [j*C, (j+1)*C). Logits
(B/f, f*K) unfold to (B, K) in the same order. A batch that is not a multiple of f is
zero-padded; padded rows never come back.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .errors import FoldError, ShapeError


class Folded(NamedTuple):
    """A folded batch and how many of its images are real (the rest is zero padding)."""

    images: torch.Tensor
    num_images: int


def check_fold(fold: object) -> int:
    """Return `fold` as an int if it is an integer >= 1, else raise FoldError."""
    if isinstance(fold, bool) or not isinstance(fold, int):
        if isinstance(fold, float) and fold.is_integer() and fold >= 1:
            return int(fold)
        raise FoldError(f"fold must be an integer >= 1, got {fold!r}")
    if fold < 1:
        raise FoldError(f"fold must be an integer >= 1, got {fold}")
    return fold


def num_groups(num_images: int, fold: int) -> int:
    """Number of folded inputs needed for `num_images` images: ceil(num_images / fold)."""
    return -(-num_images // check_fold(fold))


def round_up(n: int, multiple: int) -> int:
    """Smallest multiple of `multiple` >= n (e.g. a batch of n images rounded up to whole folded inputs)."""
    return num_groups(n, multiple) * multiple


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int]:
    """Zero-pad dim 0 of `x` up to a multiple of `multiple`.

    (B, ...) -> (ceil(B/m)*m, ...); returns the padded tensor and B. No copy when B is
    already a multiple.
    """
    multiple = check_fold(multiple)
    n = x.shape[0]
    extra = round_up(n, multiple) - n
    if extra == 0:
        return x, n
    pad = x.new_zeros((extra, *x.shape[1:]))
    return torch.cat([x, pad], dim=0), n


def valid_mask(num_images: int, fold: int) -> torch.Tensor:
    """Bool mask (ceil(n/f), f): True where a fold slot holds a real image."""
    groups = num_groups(num_images, fold)
    return (torch.arange(groups * fold) < num_images).view(groups, fold)


def _check_rank(x: torch.Tensor, rank: int, what: str) -> None:
    if x.dim() != rank:
        raise ShapeError(f"{what} must have {rank} dimensions, got shape {tuple(x.shape)}")


def fold_images(x: torch.Tensor, fold: int) -> Folded:
    """Fold images (B, C, H, W) -> (ceil(B/f), f*C, H, W), zero-padding the last group.

    Image i lands in group i // f at channels [(i % f)*C, (i % f + 1)*C).
    """
    _check_rank(x, 4, "images")
    fold = check_fold(fold)
    padded, n = pad_to_multiple(x, fold)
    b, c, h, w = padded.shape
    return Folded(padded.reshape(b // fold, fold * c, h, w), n)


def unfold_images(folded: torch.Tensor, fold: int, num_images: int | None = None) -> torch.Tensor:
    """Inverse of fold_images: (G, f*C, H, W) -> (num_images, C, H, W), dropping padding."""
    _check_rank(folded, 4, "folded images")
    fold = check_fold(fold)
    g, fc, h, w = folded.shape
    if fc % fold:
        raise ShapeError(f"folded images have {fc} channels, not a multiple of fold={fold}")
    images = folded.reshape(g * fold, fc // fold, h, w)
    return images if num_images is None else images[:num_images]


def unfold_logits(y: torch.Tensor, fold: int, num_images: int) -> torch.Tensor:
    """Per-image logits from folded logits: (G, f*K) -> (num_images, K), padding dropped."""
    _check_rank(y, 2, "folded logits")
    fold = check_fold(fold)
    g, fk = y.shape
    if fk % fold:
        raise ShapeError(f"folded logits have {fk} columns, not a multiple of fold={fold}")
    if not 0 <= num_images <= g * fold:
        raise ShapeError(f"num_images={num_images} does not fit {g} groups of fold={fold}")
    return y.reshape(g * fold, fk // fold)[:num_images]


def log_softmax_per_image(y: torch.Tensor, classes: int) -> torch.Tensor:
    """log_softmax over each image's logits of folded logits: (G, f*K) -> (G, f*K), K = `classes`.

    A folded network whose original ended in log_softmax(x, dim=1) (PyTorch's MNIST example) runs this in its
    place: over all f*K columns the images' classes would compete with each other."""
    _check_rank(y, 2, "folded logits")
    if y.shape[1] % classes:
        raise ShapeError(f"folded logits have {y.shape[1]} columns, not a multiple of {classes} classes")
    return torch.log_softmax(y.reshape(y.shape[0], -1, classes), dim=-1).reshape(y.shape)
