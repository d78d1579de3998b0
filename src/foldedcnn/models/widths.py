"""Hidden-width rule of folding: w -> floor(w * width_mult), width_mult = sqrt(f) by default, at least
f * min(w, min_block), rounded up to a multiple of `align`: 8 by default for folded models (tensor cores
want channel counts that are multiples of 8), PAPER_WIDTHS (= 1) for the paper's exact widths. At f = 1
the default keeps the original widths. `block_of` b > 1 describes one image's block of a model folded b
times (its narrow network, transform.narrow_model): that width divided by b, so the block fills all the
b-th share of the folded channels, the channels `align` added included.

`min_block` (MIN_BLOCK, 8, with the default widths; 0, no minimum, with the paper's) keeps every image's
share of a hidden layer at min(w, min_block) channels or more. sqrt(f) alone gives each image w / sqrt(f):
the game models' 8-channel last conv leaves 4 channels per image at f = 4 (5 at f = 3), the narrowest point
of the network, and it held their accuracy back more than the body's 16 (the CPU accuracy table's f = 4 with
8 per image: game-lol-gold-int 89.75 -> 92.29 % test top-1, sot 93.77 -> 94.66, apex 94.45 -> 95.24,
benchmarks/results/accuracy.md). That conv is a few % of the model's FLOPs: the minimum costs 1.1-3.0 % at
f = 3 and 1.8-5.1 % at f = 4; no other layer of the zoo is narrower than 8 channels per image. Checkpoints
saved before the minimum existed record none and rebuild with 0."""

from __future__ import annotations

import math

from ..errors import FoldedCNNError, check_int
from ..layout import check_fold

TENSOR_CORE_ALIGN = 8
PAPER_WIDTHS = 1  # align that gives the paper's exact floor(w * sqrt(f)) widths
MIN_BLOCK = 8  # with the default widths, the fewest channels of a hidden layer per image (at most the layer's own)


def resolve_align(align: int | None, fold: int) -> int:
    """`align`, or when None the default: TENSOR_CORE_ALIGN for f > 1, 1 (the original's widths) at f = 1."""
    if align is None:
        return TENSOR_CORE_ALIGN if check_fold(fold) > 1 else 1
    check_width_args(None, align)
    return align


def resolve_min_block(min_block: int | None, align: int) -> int:
    """`min_block`, or when None the default for the resolved `align`: 0 (no minimum) with the paper's widths
    (PAPER_WIDTHS), MIN_BLOCK otherwise."""
    if min_block is None:
        return 0 if align == PAPER_WIDTHS else MIN_BLOCK
    check_int("min_block", min_block, 0, " (0: no minimum)")
    return min_block


def default_width_mult(fold: int) -> float:
    """sqrt(f): keeps FLOPs per image about constant (paper, section 4)."""
    return math.sqrt(check_fold(fold))


def check_width_args(width_mult: float | None, align: int, block_of: int = 1, fold: int = 1) -> None:
    """Raise FoldedCNNError unless width_mult is None or > 0, align and block_of are integers >= 1, and
    block_of is 1 at fold > 1 (a block of a folded model is a fold-1 network)."""
    if width_mult is not None and width_mult <= 0:
        raise FoldedCNNError(f"width_mult must be > 0, got {width_mult}")
    check_int("align", align, 1)
    check_int("block_of", block_of, 1)
    if block_of > 1 and fold > 1:
        raise FoldedCNNError(f"block_of={block_of} describes one image's block of a folded model, a network at fold "
                             f"1; this one has fold {fold}: leave block_of at 1")


def scaled_width(width: int, fold: int = 1, width_mult: float | None = None, align: int | None = None,
                 block_of: int = 1, min_block: int | None = None) -> int:
    """Hidden width of a folded layer: folded_width, then with `block_of` b that width // b (at least 1): one
    image's block of it.

    >>> [scaled_width(16, f, align=PAPER_WIDTHS) for f in (1, 2, 3, 4)]
    [16, 22, 27, 32]
    >>> [scaled_width(16, f) for f in (1, 2, 3, 4)]
    [16, 24, 32, 32]
    >>> [scaled_width(8, f) for f in (1, 2, 3, 4)], [scaled_width(8, f, min_block=0) for f in (1, 2, 3, 4)]
    ([8, 16, 24, 32], [8, 16, 16, 16])
    >>> [scaled_width(8, 1, 2 ** 0.5, a, block_of=2) for a in (PAPER_WIDTHS, TENSOR_CORE_ALIGN)]
    [5, 8]
    """
    align = resolve_align(align, fold)
    check_width_args(width_mult, align, block_of, fold)
    return max(1, folded_width(width, fold, width_mult, align, resolve_min_block(min_block, align),
                               block_of) // block_of)


def folded_width(width: int, fold: int, width_mult: float | None, align: int, min_block: int,
                 block_of: int = 1) -> int:
    """The folded width of a hidden layer of `width` channels, before a narrow network's // block_of:
    floor(width * mult) (mult: `width_mult`, sqrt(fold) when None), at least f * min(width, min_block) for
    the f = fold * block_of images that share it, rounded up to a multiple of `align` (all resolved)."""
    mult = default_width_mult(fold) if width_mult is None else float(width_mult)
    # round away float noise (e.g. 20 * 1.15 = 22.999999999999996) before flooring
    scaled = max(1, math.floor(round(width * mult, 6)), fold * block_of * min(width, min_block))
    return -(-scaled // align) * align
