"""Hidden-width rule of folding: w -> floor(w * width_mult), width_mult = sqrt(f) by default, rounded up
to a multiple of `align`: 8 by default for folded models (tensor cores want channel counts that are
multiples of 8), PAPER_WIDTHS (= 1) for the paper's exact widths. At f = 1 the default keeps the
original widths. `block_of` b > 1 describes one image's block of a model folded b times (its narrow
network, transform.narrow_model): that width divided by b, so the block fills all the b-th share of the
folded channels, the channels `align` added included."""

from __future__ import annotations

import math

from ..errors import FoldedCNNError
from ..layout import check_fold

TENSOR_CORE_ALIGN = 8
PAPER_WIDTHS = 1  # align that gives the paper's exact floor(w * sqrt(f)) widths


def resolve_align(align: int | None, fold: int) -> int:
    """`align`, or when None the default: TENSOR_CORE_ALIGN for f > 1, 1 (the original's widths) at f = 1."""
    if align is None:
        return TENSOR_CORE_ALIGN if check_fold(fold) > 1 else 1
    check_width_args(None, align)
    return align


def default_width_mult(fold: int) -> float:
    """sqrt(f): keeps FLOPs per image about constant (paper, section 4)."""
    return math.sqrt(check_fold(fold))


def check_width_args(width_mult: float | None, align: int, block_of: int = 1, fold: int = 1) -> None:
    """Raise FoldedCNNError unless width_mult is None or > 0, align and block_of are integers >= 1, and
    block_of is 1 at fold > 1 (a block of a folded model is a fold-1 network)."""
    if width_mult is not None and width_mult <= 0:
        raise FoldedCNNError(f"width_mult must be > 0, got {width_mult}")
    for name, value in (("align", align), ("block_of", block_of)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FoldedCNNError(f"{name} must be an integer >= 1, got {value!r}")
    if block_of > 1 and fold > 1:
        raise FoldedCNNError(f"block_of={block_of} describes one image's block of a folded model, a network at fold "
                             f"1; this one has fold {fold}: leave block_of at 1")


def scaled_width(width: int, fold: int = 1, width_mult: float | None = None, align: int | None = None,
                 block_of: int = 1) -> int:
    """Hidden width of a folded layer: floor(width * mult), then rounded up to a multiple of `align`
    (None: resolve_align's default); with `block_of` b, that width // b (at least 1): one image's block of it.

    >>> [scaled_width(16, f, align=PAPER_WIDTHS) for f in (1, 2, 3, 4)]
    [16, 22, 27, 32]
    >>> [scaled_width(16, f) for f in (1, 2, 3, 4)]
    [16, 24, 32, 32]
    >>> [scaled_width(8, 1, 2 ** 0.5, a, block_of=2) for a in (PAPER_WIDTHS, TENSOR_CORE_ALIGN)]
    [5, 8]
    """
    align = resolve_align(align, fold)
    check_width_args(width_mult, align, block_of, fold)
    mult = default_width_mult(fold) if width_mult is None else float(width_mult)
    # round away float noise (e.g. 20 * 1.15 = 22.999999999999996) before flooring
    scaled = max(1, math.floor(round(width * mult, 6)))
    return max(1, -(-scaled // align) * align // block_of)
