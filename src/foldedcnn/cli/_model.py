"""The arguments that name a model, shared by the commands: a zoo name or your own factory (`--module`)."""

from __future__ import annotations

import argparse
import json

MODULE_HELP = ("your own model: a function returning the unfolded network (B, C, H, W) -> (B, K), as "
               "pkg.module:function (the working directory is importable, as with python -m) or "
               "path/file.py:function; checkpoints record how to rebuild it from any directory")


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('expected a JSON object, e.g. \'{"width": 32}\'')
    return value


def add_module_arguments(p: argparse.ArgumentParser, *, many: bool = False, input_shape: bool = True) -> None:
    """`--module` (repeatable with `many`), `--module-kwargs` and, unless the data gives it, `--input-shape`."""
    if many:
        p.add_argument("--module", action="append", default=[], metavar="MODULE:FACTORY",
                       help=MODULE_HELP + " (repeat for several)")
    p.add_argument("--module-kwargs", type=_json_object, default={}, metavar="JSON",
                   help='keyword arguments of the --module factory, a JSON object, e.g. \'{"width": 32}\'')
    if input_shape:
        p.add_argument("--input-shape", type=int, nargs=3, metavar=("C", "H", "W"),
                       help="one image's shape, needed with --module")


def add_model_arguments(p: argparse.ArgumentParser, *, input_shape: bool = True) -> None:
    """Exactly one of `--model NAME` and `--module MODULE:FACTORY`, plus add_module_arguments."""
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--model", metavar="NAME", help="zoo name (see `foldedcnn models`)")
    group.add_argument("--module", metavar="MODULE:FACTORY", help=MODULE_HELP)
    add_module_arguments(p, input_shape=input_shape)


def model_refs(names: list[str], args: argparse.Namespace) -> list:
    """ModelRefs of zoo `names` and of each `args.module` (a string or a list) with its kwargs and input shape."""
    from ..errors import FoldedCNNError
    from ..transform import ModelRef

    modules = [args.module] if isinstance(args.module, str) else list(args.module or [])
    for m in modules:
        if ":" not in m:
            raise FoldedCNNError(f"--module takes pkg.module:function or path/file.py:function, got {m!r}")
    shape = tuple(args.input_shape) if getattr(args, "input_shape", None) else None
    return [ModelRef(n).check() for n in names] + [ModelRef(m, shape, args.module_kwargs).check() for m in modules]
