"""The Engine's process's share of `foldedcnn run`, per frame: turning logits into CSV lines, storing them in
chunks, merging and counting the final CSV. Every frame of a job passes through this one process, so its cost
caps the whole job's frames/s however many cores decode.

Per class count (the zoo's: 2 noscope, 15 sot-coin-count, 111 lol-gold-int), interleaved over --repeats:
  python per field  each number formatted by Python and the rows written by csv.writer (the job before
                    _frame_labels.csv_lines_for; the peer)
  csv_lines_for     the job's formatting: the numbers of a batch as one array of characters
  store + count     VideoRows and ChunkStore writing --frames frames in chunks, the merge into the final CSV
                    and RowTally over each chunk as it is merged, the rows' times included (RowTimes: the job's
                    other per-frame work in that process)
Reported: microseconds per frame, median (min-max), the frames/s that csv_lines_for + store + count alone
allow one process, and the most memory store + count held at once (tracemalloc) beside the CSV's size.

    python benchmarks/label_rows.py --out benchmarks/results/cpu-2core
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from foldedcnn.bench.machine import machine_info  # noqa: E402
from foldedcnn.label._chunk_store import ChunkStore, VideoRows  # noqa: E402
from foldedcnn.label._frame_labels import cascade, csv_lines_for, header, probabilities  # noqa: E402
from foldedcnn.label._job_video import RowTally  # noqa: E402
from foldedcnn.label._row_times import RowTimes  # noqa: E402

CLASSES = (2, 15, 111)
UNCERTAIN = (0.1, 0.9)


def python_per_field(index, time_s, logits, names) -> list[str]:
    """The peer: rows of Python-formatted fields through csv.writer."""
    probs = probabilities(logits)
    score, label, unsure = cascade(probs, UNCERTAIN)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(
        [i, f"{t:.6f}", *(f"{p:.6f}" for p in pr), f"{s:.6f}", names[k], int(u)]
        for i, t, pr, s, k, u in zip(index.tolist(), time_s.tolist(), probs.tolist(), score.tolist(), label.tolist(),
                                     unsure.tolist(), strict=True))
    return buf.getvalue().splitlines(keepends=True)


def store_and_count(folder: Path, lines: list[str], batch: int, names: list[str]) -> None:
    """What the job does with a video's lines after formatting them: chunks, merge, counts."""
    store = ChunkStore(folder, "video", header(names), 1024, {})
    rows = VideoRows(store, store.open(overwrite=True), len(lines))
    for first in range(0, len(lines), batch):
        rows.add(first, lines[first:first + batch])
    tally = RowTally(names, RowTimes(30.0, 1))  # the rows' times too: frames the file does not hold
    rows.finish(tally.add_rows)
    assert tally.counts()[0] == len(lines) and tally.times.missing_frames == 0


def contenders(k: int, index: np.ndarray, time_s: np.ndarray, batch: int, folder: Path) -> dict:
    """The three timed ways for a k-class model, by name (the two formattings checked equal first)."""
    names = [f"class{c}" for c in range(k)]
    logits = torch.randn(len(index), k) * 4
    batches = [slice(s, s + batch) for s in range(0, len(index), batch)]
    ways = {"python per field": lambda: [python_per_field(index[b], time_s[b], logits[b], names) for b in batches],
            "csv_lines_for": lambda: [csv_lines_for(index[b], time_s[b], logits[b], names, UNCERTAIN)
                                      for b in batches]}
    lines = [line for b in ways["csv_lines_for"]() for line in b]
    assert lines == [line for b in ways["python per field"]() for line in b]
    ways["store + count"] = lambda: store_and_count(folder, lines, batch, names)
    return ways


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16384)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    index, time_s = np.arange(args.frames), np.arange(args.frames) / 30.0
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in CLASSES:
            ways = contenders(k, index, time_s, args.batch, Path(tmp))
            us: dict[str, list[float]] = {w: [] for w in ways}
            for _ in range(args.repeats):
                for way, run in ways.items():
                    t = time.perf_counter()
                    run()
                    us[way].append((time.perf_counter() - t) / args.frames * 1e6)
            tracemalloc.start()  # what the merge holds at once: one chunk, whatever the CSV's size
            ways["store + count"]()
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            table.append((k, us, peak, (Path(tmp) / "video.csv").stat().st_size))
    m = machine_info("cpu")
    out = ["# The Engine's process's work per frame of `foldedcnn run` (labelling rows, storing, counting)", "",
           f"Machine: {m['cpu']}, Python {m['python']}, torch {m['torch']}. {args.frames} frames in batches of "
           f"{args.batch}, median (min-max) of {args.repeats} interleaved repeats; frames/s: what that cost alone "
           "allows one process.", "",
           "| classes | python per field us | csv_lines_for us | speedup | store + count us | both us | "
           "frames/s cap | store + count peak MB | CSV MB |", "|---|---|---|---|---|---|---|---|---|"]
    for k, us, peak, size in table:
        med = {w: statistics.median(v) for w, v in us.items()}
        cell = {w: f"{med[w]:.1f} ({min(v):.1f}-{max(v):.1f})" for w, v in us.items()}
        share = med["csv_lines_for"] + med["store + count"]
        out.append(f"| {k} | {cell['python per field']} | {cell['csv_lines_for']} | "
                   f"{med['python per field'] / med['csv_lines_for']:.1f}x | {cell['store + count']} | {share:.1f} | "
                   f"{1e6 / share:,.0f} | {peak / 1e6:.1f} | {size / 1e6:.1f} |")
    out += ["", f"Command: `python {' '.join(sys.argv)}`"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "label_rows.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
