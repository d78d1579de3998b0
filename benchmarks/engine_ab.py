"""A/B of the CPU engine between two checkouts: Engine.predict images/s on host uint8 (B, H, W, C).

Each round runs one fresh process per (checkout, fold, backend), alternating A and B, so drifts of
a shared machine hit both alike; each process times `--reps` calls after a warm-up and prints the
median. Reported per configuration: median over rounds, with min-max.

Usage: python benchmarks/engine_ab.py A_SRC B_SRC [--model noscope-coral] [--folds 1 4]
       [--backends onnxruntime torch] [--batch 1024] [--rounds 5] [--reps 7]
(A_SRC / B_SRC: the `src` directories of the two checkouts.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = """
import json, statistics, sys, time, torch
import foldedcnn
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine
model, fold, backend, batch, reps = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.manual_seed(0)
engine = Engine(FoldedModel.from_zoo(model, fold), backend=backend, device="cpu", max_batch=batch)
c, h, w = engine.input_shape
x = torch.randint(0, 256, (batch, h, w, c), dtype=torch.uint8)
for _ in range(2):
    engine.predict(x)
times = []
for _ in range(reps):
    t0 = time.perf_counter(); engine.predict(x); times.append(time.perf_counter() - t0)
print(json.dumps({"images_per_s": batch / statistics.median(times), "file": foldedcnn.__file__}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a_src")
    p.add_argument("b_src")
    p.add_argument("--model", default="noscope-coral")
    p.add_argument("--folds", nargs="+", type=int, default=[1, 4])
    p.add_argument("--backends", nargs="+", default=["onnxruntime", "torch"])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", type=int, default=7)
    args = p.parse_args()
    configs = [(f, b) for f in args.folds for b in args.backends]
    rates: dict[tuple, list[float]] = {}
    for r in range(args.rounds):
        for fold, backend in configs:
            for label, src in (("A", args.a_src), ("B", args.b_src)) if r % 2 == 0 else \
                    (("B", args.b_src), ("A", args.a_src)):
                env = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
                out = subprocess.run([sys.executable, "-c", CHILD, args.model, str(fold), backend, str(args.batch),
                                      str(args.reps)], env=env, check=True, capture_output=True, text=True).stdout
                rates.setdefault((fold, backend, label), []).append(json.loads(out.strip().splitlines()[-1])
                                                                    ["images_per_s"])
    print(f"{args.model}, batch {args.batch}, images/s median over {args.rounds} rounds (min-max); "
          f"A = {args.a_src}, B = {args.b_src}")
    for fold, backend in configs:
        cells = []
        for label in "AB":
            v = rates[(fold, backend, label)]
            cells.append(f"{label} {statistics.median(v):>9,.0f} ({min(v):,.0f}-{max(v):,.0f})")
        ratio = statistics.median(rates[(fold, backend, "B")]) / statistics.median(rates[(fold, backend, "A")])
        print(f"f={fold} {backend:12s} " + "  ".join(cells) + f"  B/A {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
