"""`foldedcnn <command>`: a thin layer over the library. Each command lives in its own module
with `register(subparsers)`; heavy imports happen inside the command, not at start-up."""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import FoldedCNNError

COMMANDS = ("models", "analyze", "probe", "run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foldedcnn",
        description="Fold small specialized CNNs for higher inference throughput (FoldedCNNs, ICML 2021).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; user mistakes print one `error:` line and exit 2, never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FoldedCNNError as exc:
        print(f"foldedcnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"foldedcnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
