"""Hidden-width rule of folding: w -> floor(w * width_mult), width_mult = sqrt(f) by default."""

from __future__ import annotations

import math

from ..errors import FoldedCNNError
from ..layout import check_fold


def default_width_mult(fold: int) -> float:
    """sqrt(f): keeps FLOPs per image about constant (paper, section 4)."""
    return math.sqrt(check_fold(fold))


def check_width_args(width_mult: float | None, align: int) -> None:
    """Raise FoldedCNNError unless width_mult is None or > 0 and align is an integer >= 1."""
    if width_mult is not None and width_mult <= 0:
        raise FoldedCNNError(f"width_mult must be > 0, got {width_mult}")
    if isinstance(align, bool) or not isinstance(align, int) or align < 1:
        raise FoldedCNNError(f"align must be an integer >= 1, got {align!r}")


def scaled_width(width: int, fold: int = 1, width_mult: float | None = None, align: int = 1) -> int:
    """Hidden width of a folded layer: floor(width * mult), then rounded up to a multiple of `align`.

    >>> [scaled_width(16, f) for f in (1, 2, 3, 4)]
    [16, 22, 27, 32]
    """
    check_width_args(width_mult, align)
    mult = default_width_mult(fold) if width_mult is None else float(width_mult)
    # round away float noise (e.g. 20 * 1.15 = 22.999999999999996) before flooring
    scaled = max(1, math.floor(round(width * mult, 6)))
    return -(-scaled // align) * align
