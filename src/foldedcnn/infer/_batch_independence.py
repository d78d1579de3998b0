"""Whether an engine's logits for an image depend on the other images of its call, bit for bit.

Folding groups f consecutive images of a call, so a caller that splits a batch keeps every group whole by
cutting at multiples of f. Past that, a backend may still give an image other bits in another call: a
convolution algorithm chosen per batch size (cuDNN, oneDNN) sums in another order. A caller that must write
the same bytes however its work was split (the video job's resume) may run a batch in pieces only where the
engine gives exactly the logits of the whole: probed here on random images, each piece size a multiple of f.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

PROBE_SEED = 20211  # the random images are the same on every run


def piece_sizes(max_batch: int, fold: int) -> list[int]:
    """Sizes that split `max_batch` images into pieces of f, 2f, 4f, ... images (each a multiple of `fold`), the
    rest in one last piece: every call size a caller cutting at multiples of f makes, up to doubling."""
    sizes, used, size = [], 0, fold
    while used + size < max_batch:
        sizes.append(size)
        used += size
        size *= 2
    return [*sizes, max_batch - used]


def splits_exactly(predict: Callable[[torch.Tensor], torch.Tensor], max_batch: int, fold: int,
                   input_shape: tuple[int, int, int]) -> bool:
    """True when `predict` (uint8 images (n, C, H, W) -> logits (n, K)) gives a batch of `max_batch` random
    images exactly, bit for bit, the logits it gives the same images in pieces (piece_sizes)."""
    gen = torch.Generator().manual_seed(PROBE_SEED)
    images = torch.randint(0, 256, (max_batch, *input_shape), generator=gen, dtype=torch.uint8)
    whole = predict(images)
    pieces = torch.cat([predict(part) for part in torch.split(images, piece_sizes(max_batch, fold))])
    return torch.equal(whole, pieces)
