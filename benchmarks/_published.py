"""A benchmark's Markdown report: printed, and written to its --out folder when given."""

from __future__ import annotations

from pathlib import Path


def publish(text: str, out: Path | None, name: str) -> None:
    """Print `text`; with `out`, write it to out/<name> too (the folder made if missing)."""
    print(text)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text + "\n")
