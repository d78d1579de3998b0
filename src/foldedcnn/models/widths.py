"""Hidden-width rule of folding: w -> floor(w * width_mult), width_mult = sqrt(f) by default, rounded up
to a multiple of `align`: 8 by default for folded models (tensor cores want channel counts that are
multiples of 8), PAPER_WIDTHS (= 1) for the paper's exact widths. At f = 1 the default keeps the
original widths."""

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


def check_width_args(width_mult: float | None, align: int) -> None:
    """Raise FoldedCNNError unless width_mult is None or > 0 and align is an integer >= 1."""
    if width_mult is not None and width_mult <= 0:
        raise FoldedCNNError(f"width_mult must be > 0, got {width_mult}")
    if isinstance(align, bool) or not isinstance(align, int) or align < 1:
        raise FoldedCNNError(f"align must be an integer >= 1, got {align!r}")


def scaled_width(width: int, fold: int = 1, width_mult: float | None = None, align: int | None = None) -> int:
    """Hidden width of a folded layer: floor(width * mult), then rounded up to a multiple of `align`
    (None: resolve_align's default).

    >>> [scaled_width(16, f, align=PAPER_WIDTHS) for f in (1, 2, 3, 4)]
    [16, 22, 27, 32]
    >>> [scaled_width(16, f) for f in (1, 2, 3, 4)]
    [16, 24, 32, 32]
    """
    align = resolve_align(align, fold)
    check_width_args(width_mult, align)
    mult = default_width_mult(fold) if width_mult is None else float(width_mult)
    # round away float noise (e.g. 20 * 1.15 = 22.999999999999996) before flooring
    scaled = max(1, math.floor(round(width * mult, 6)))
    return -(-scaled // align) * align
