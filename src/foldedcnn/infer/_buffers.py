"""Preallocated folded input buffers, one per batch bucket, in the layout a backend wants.

A buffer of G groups is stored either (G, H, W, f, C) (channels-last folded input) or
(G, f, C, H, W) (NCHW). Both expose the same two views: `images` (G, f, C, H, W), where image j
of group i is written, and `folded` (G, f*C, H, W), what the network reads. No copy between them.
"""

from __future__ import annotations

import torch


def bucket_sizes(max_batch: int, fold: int, static: bool) -> list[int]:
    """Batch buckets in images, all multiples of `fold`, the largest `max_batch` (a multiple of fold).

    Dynamic backends get f * 2^k (a buffer is then sliced to the exact group count); static ones
    (CUDA graphs) get a few: f * 4^k.
    """
    step = 4 if static else 2
    sizes, b = [], fold
    while b < max_batch:
        sizes.append(b)
        b *= step
    return [*sizes, max_batch]


class FoldedBuffer:
    """Storage for `groups` folded inputs of f images (C, H, W), zero-initialised."""

    def __init__(self, groups: int, fold: int, image_shape: tuple[int, int, int], channels_last: bool,
                 device: torch.device, dtype: torch.dtype) -> None:
        c, h, w = image_shape
        if channels_last:
            storage = torch.zeros(groups, h, w, fold, c, device=device, dtype=dtype)
            self.images = storage.permute(0, 3, 4, 1, 2)
            self.folded = storage.view(groups, h, w, fold * c).permute(0, 3, 1, 2)
        else:
            storage = torch.zeros(groups, fold, c, h, w, device=device, dtype=dtype)
            self.images = storage
            self.folded = storage.view(groups, fold * c, h, w)
        self.groups = groups
