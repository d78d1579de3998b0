"""Rate of the game-HUD generator into in-memory tensors (images/s), per task and worker count.

    flock /tmp/foldedcnn-heavy.lock env PYTHONPATH=src .venv/bin/python benchmarks/game_generator.py

Each cell: median of --repeats timed runs of --n images (after one warm-up run that builds the
glyph and background caches), with min-max. Writes benchmarks/results/game_generator.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from foldedcnn.data.game import generate_game
from foldedcnn.device import device_name
from foldedcnn.models.game import GAME_TASKS
from foldedcnn.tables import format_table, markdown_table


def rate(task: str, n: int, workers: int, repeats: int) -> list[float]:
    generate_game(task, "train", min(n, 2048), seed=99, workers=workers)  # warm caches (and the pool start-up path)
    rates = []
    for r in range(repeats):
        t0 = time.perf_counter()
        generate_game(task, "train", n, seed=r, workers=workers)
        rates.append(n / (time.perf_counter() - t0))
    return rates



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="*", default=list(GAME_TASKS))
    p.add_argument("--n", type=int, default=16384)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "game_generator.md")
    args = p.parse_args()
    rows = []
    for task in args.tasks:
        for workers in args.workers:
            r = rate(task, args.n, workers, args.repeats)
            rows.append({"task": task, "workers": workers, "images_per_s": statistics.median(r),
                         "min": min(r), "max": max(r)})
            print(f"{task} workers={workers}: {rows[-1]['images_per_s']:,.0f} images/s "
                  f"(min {min(r):,.0f}, max {max(r):,.0f})", flush=True)
    print(format_table(rows))
    machine = f"{device_name('cpu')}, Python {platform.python_version()}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "# Game-HUD generator rate\n\n"
        "Command: `flock /tmp/foldedcnn-heavy.lock env PYTHONPATH=src .venv/bin/python benchmarks/game_generator.py"
        f" --n {args.n} --repeats {args.repeats}`\n\nMachine: {machine} (shared with other jobs; median of repeats, "
        f"min-max shown).\n\n{markdown_table(rows)}\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
