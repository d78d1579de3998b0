"""`foldedcnn fold`: fold a zoo model or any CNN factory generically (torch.fx) and print the plan."""

from __future__ import annotations

import json
from pathlib import Path

from ._model import add_model_arguments, model_refs
from ._width_args import add_width_args


def register(sub) -> None:
    p = sub.add_parser("fold", help="fold any CNN generically (torch.fx) and print each layer's folded width")
    add_model_arguments(p)
    p.add_argument("--fold", type=int, default=4, help="images per folded input (default 4)")
    p.add_argument("--width-mult", type=float, default=None, help="hidden width multiplier (default sqrt(fold))")
    add_width_args(p)
    p.add_argument("--json", metavar="PATH", help="also write the plan and its source as JSON (rebuildable)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..checkpoint import architecture_of
    from ..models import get_spec
    from ..transform import build_source, fold_model

    if args.model:  # the zoo model's unfolded version, folded generically
        source, shape = {"zoo": args.model}, args.input_shape or get_spec(args.model).input_shape
    else:
        ref = model_refs([], args)[0]
        source, shape = ref.source, ref.input_shape
    model = build_source(source, trust_code=True)  # the user named this module on the command line
    folded = fold_model(model, args.fold, torch.randn(1, *shape), width_mult=args.width_mult, align=args.align,
                        min_block=args.min_block, source=source)
    print(folded.plan.table())
    if args.json:
        path = Path(args.json)
        path.write_text(json.dumps(architecture_of(folded), indent=2))
        print(f"plan written to {path}")
    return 0
