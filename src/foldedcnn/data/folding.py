"""Fold-aware ordering and batching.

Training and evaluation shuffle so that the f images sharing a folded input are unrelated (the
paper shuffled train, val and test): for ordered data such as consecutive video frames, indices
within `min_gap` of each other never land in the same fold. Evaluation never drops a remainder:
the last batch is zero-padded to a multiple of f and carries a mask (and label -100, the
CrossEntropyLoss ignore_index, on padded rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from ..errors import FoldedCNNError
from ..layout import check_fold
from .types import LabelledImages

PAD_LABEL = -100


def _conflicts(order: np.ndarray, fold: int, min_gap: int) -> np.ndarray:
    """Positions in `order` (length a multiple of fold) whose value is within min_gap of a fold-mate's."""
    groups = order.reshape(-1, fold)
    rank = np.argsort(groups, axis=1)
    sorted_vals = np.take_along_axis(groups, rank, axis=1)
    close = np.diff(sorted_vals, axis=1) <= min_gap
    rows, cols = np.nonzero(close)
    return rows * fold + rank[rows, cols + 1]


def fold_mixing_order(n: int, fold: int, seed: int, epoch: int = 0, *, min_gap: int = 1) -> torch.Tensor:
    """A permutation (n,) int64 of range(n): read in this order, folds hold unrelated images.

    Fold g is order[g*fold:(g+1)*fold]. No two indices within a fold differ by <= `min_gap` (so
    consecutive frames never share a fold) whenever n >= 4 * fold * (min_gap + 1); smaller sets get
    a plain random permutation. The same (n, fold, seed, epoch) always gives the same order.
    """
    fold = check_fold(fold)
    if n < 0:
        raise FoldedCNNError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, epoch, fold]))
    order = rng.permutation(n)
    if fold == 1 or n < 4 * fold * (min_gap + 1):
        return torch.from_numpy(order.astype(np.int64))
    tail = -n % fold
    # Sentinel values far apart from everything keep the short last fold checkable; they never move.
    padded = np.concatenate([order, n + (min_gap + 1) * (1 + np.arange(tail))])
    for _ in range(1000):
        bad = _conflicts(padded, fold, min_gap)
        if bad.size == 0:
            break
        swap = rng.integers(0, n, size=bad.size)
        for a, b in zip(bad.tolist(), swap.tolist(), strict=True):
            padded[a], padded[b] = padded[b], padded[a]
    else:  # pragma: no cover - needs an adversarially tiny n, which the size check rules out
        raise FoldedCNNError(f"could not separate neighbours of {n} items into folds of {fold}")
    return torch.from_numpy(padded[:n].astype(np.int64))


class FoldBatch(NamedTuple):
    """images uint8 (B, 3, H, W) and labels int64 (B,) with B a multiple of the fold; mask bool (B,) is
    False on zero-padded rows (only in the last batch), whose label is PAD_LABEL (-100)."""

    images: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor


class FoldBatcher:
    """Iterate a LabelledImages in batches whose size is a multiple of `fold`.

    With `shuffle` the order is fold_mixing_order(n, fold, seed, epoch) (call `set_epoch` each
    epoch); without it, the stored order. Every image appears exactly once per pass; the last
    batch is padded up to a multiple of fold, never dropped.
    """

    def __init__(self, data: LabelledImages, fold: int, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 min_gap: int = 1) -> None:
        self.fold = check_fold(fold)
        if batch_size < 1 or batch_size % self.fold:
            raise FoldedCNNError(f"batch_size must be a positive multiple of fold={self.fold}, got {batch_size}")
        self.data, self.batch_size, self.shuffle, self.seed, self.min_gap = data, batch_size, shuffle, seed, min_gap
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the mixing order of `epoch` on the next pass."""
        self.epoch = epoch

    def order(self) -> torch.Tensor:
        """The image order of the current epoch (n,) int64."""
        n = len(self.data)
        if not self.shuffle:
            return torch.arange(n)
        return fold_mixing_order(n, self.fold, self.seed, self.epoch, min_gap=self.min_gap)

    def __len__(self) -> int:
        return -(-len(self.data) // self.batch_size)

    def __iter__(self) -> Iterator[FoldBatch]:
        order = self.order()
        images, labels = self.data.images, self.data.labels
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            x, y = images[idx], labels[idx]
            b = idx.numel()
            pad = -b % self.fold
            mask = torch.ones(b + pad, dtype=torch.bool)
            if pad:
                x = torch.cat([x, x.new_zeros((pad, *x.shape[1:]))])
                y = torch.cat([y, y.new_full((pad,), PAD_LABEL)])
                mask[b:] = False
            yield FoldBatch(x, y, mask)
