"""`foldedcnn <command>`: a thin layer over the library. Each command lives in its own module of
this package with `register(subparsers)` (a module without it is a helper); heavy imports happen
inside the command, not at start-up."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from ..errors import FoldedCNNError


def command_modules() -> list[str]:
    """Names of this package's modules, sorted; those with `register` are commands."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foldedcnn",
        description="Fold small specialized CNNs for higher inference throughput (FoldedCNNs, ICML 2021).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in command_modules():
        module = importlib.import_module(f"{__name__}.{name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


RESUMABLE = {"run", "train", "choose", "frames"}  # commands that pick up where an interrupted run stopped


def main(argv: list[str] | None = None) -> int:
    """Entry point; user mistakes print one `error:` line and exit 2, never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FoldedCNNError as exc:
        print(f"foldedcnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resumes = " (the same command resumes it)" if args.command in RESUMABLE else ""
        print(f"foldedcnn {args.command}: interrupted{resumes}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
