"""`foldedcnn fold`: fold a zoo model or any CNN factory generically (torch.fx) and print the plan."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ._width_args import add_width_args


def register(sub) -> None:
    p = sub.add_parser("fold", help="fold any CNN generically (torch.fx) and print each layer's folded width")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="NAME", help="zoo model: its unfolded version is folded generically")
    src.add_argument("--module", metavar="PKG.MODULE:FACTORY",
                     help="a function returning the unfolded model (B, C, H, W) -> (B, K); cwd is importable")
    p.add_argument("--fold", type=int, default=4, help="images per folded input (default 4)")
    p.add_argument("--input-shape", type=int, nargs=3, metavar=("C", "H", "W"),
                   help="one image's shape (default: the zoo model's; required with --module)")
    p.add_argument("--width-mult", type=float, default=None, help="hidden width multiplier (default sqrt(fold))")
    add_width_args(p)
    p.add_argument("--json", metavar="PATH", help="also write the plan and its source as JSON (rebuildable)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..checkpoint import architecture_of
    from ..errors import FoldedCNNError
    from ..transform import build_source, fold_model

    if args.model:
        from ..models import get_spec

        source = {"zoo": args.model}
        shape = args.input_shape or get_spec(args.model).input_shape
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        source = {"factory": args.module, "kwargs": {}}
        shape = args.input_shape
        if shape is None:
            raise FoldedCNNError("--input-shape C H W is required with --module")
    model = build_source(source)
    folded = fold_model(model, args.fold, torch.randn(1, *shape), width_mult=args.width_mult, align=args.align,
                        source=source)
    print(folded.plan.table())
    if args.json:
        path = Path(args.json)
        path.write_text(json.dumps(architecture_of(folded), indent=2))
        print(f"plan written to {path}")
    return 0
