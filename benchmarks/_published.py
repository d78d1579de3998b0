"""A video job benchmark's Markdown report: its title, the machine, what was run, the table and the command; printed,
and written to its --out folder when given."""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import av
import torch

from foldedcnn.device import device_name
from foldedcnn.tables import markdown_table


def job_report(title: str, engine, setup: str, rows: Sequence[Mapping[str, object]], script: str) -> str:
    """The report of `script` (benchmarks/<script>): `title`, the machine `engine` ran on (its device, Python, torch,
    PyAV, its backend), `setup` (what was run), the table of `rows` and the command line that made it."""
    return "\n".join([
        f"# {title}", "",
        f"Machine: {device_name(engine.device)}, Python {platform.python_version()}, torch {torch.__version__}, PyAV "
        f"{av.__version__}, backend {engine.backend_name}.", "",
        setup, "",
        markdown_table(rows), "",
        f"Command: `python benchmarks/{script} " + " ".join(sys.argv[1:]) + "`"])


def publish(text: str, out: Path | None, name: str) -> None:
    """Print `text`; with `out`, write it to out/<name> too (the folder made if missing)."""
    print(text)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text + "\n")
