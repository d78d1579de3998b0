"""The --align / --paper-widths options shared by the commands that build folded models."""

from __future__ import annotations


def add_width_args(p) -> None:
    """--align N (default: 8 for fold > 1, tensor cores; fold 1 keeps the original) and --paper-widths (align 1)."""
    p.add_argument("--align", type=int, default=None,
                   help="round hidden widths up to a multiple of this (default 8 for fold > 1, tensor cores)")
    p.add_argument("--paper-widths", dest="align", action="store_const", const=1,
                   help="the paper's exact widths floor(w * sqrt(f)) (same as --align 1)")
