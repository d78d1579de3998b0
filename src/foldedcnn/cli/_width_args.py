"""The --align / --paper-widths / --min-block options shared by the commands that build folded models."""

from __future__ import annotations


def add_width_args(p) -> None:
    """--align N (default: 8 for fold > 1, tensor cores; fold 1 keeps the original), --paper-widths (align 1) and
    --min-block N (models.widths)."""
    p.add_argument("--align", type=int, default=None,
                   help="round hidden widths up to a multiple of this (default 8 for fold > 1, tensor cores)")
    p.add_argument("--paper-widths", dest="align", action="store_const", const=1,
                   help="the paper's exact widths floor(w * sqrt(f)) (same as --align 1; no --min-block)")
    p.add_argument("--min-block", type=int, default=None,
                   help="channels of a hidden layer every image keeps at least, at most the layer's own (default "
                        "8; 0 with --paper-widths: none)")
