"""Cost of the Engine's thread safety on one thread: `predict` (a lock around each chunk, finite-logits
check) against the same chunks run without them (the loop predict had before issue #13), interleaved.

    PYTHONPATH=src python benchmarks/engine_lock.py [--batch 1 16 256] [--trials 30] [--threads 1]

Prints, per batch, median and min-max microseconds per call of each variant and the ratio of medians,
then what the guard itself costs (an uncontended lock plus the finite check of (B, K) logits), timed
alone: on a loaded machine the side-by-side ratio is noise, the guard's own cost is not.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from foldedcnn.device import device_name
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine
from foldedcnn.infer._preprocess import check_finite_logits
from foldedcnn.layout import unfold_logits


def unguarded(engine: Engine, x: torch.Tensor) -> torch.Tensor:
    """predict() without the lock and the finite check."""
    out = torch.empty(x.shape[0], engine.num_classes, dtype=torch.float32)
    for start in range(0, x.shape[0], engine.max_batch):
        folded, n = engine.prepare(x[start:start + engine.max_batch])
        out[start:start + n].copy_(unfold_logits(engine.backend.forward_folded(folded), engine.fold, n))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16, 256])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--backend", default="torch")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    engine = Engine(FoldedModel.from_zoo("noscope-coral", 4).eval(), backend=args.backend, device="cpu")
    print(f"machine: {device_name(torch.device('cpu'))}, torch {torch.__version__}, {args.threads} thread(s), "
          f"backend {engine.backend_name}, noscope-coral f=4, uint8 input")
    variants = {"predict (locked)": engine.predict, "unguarded": lambda x: unguarded(engine, x)}
    for batch in args.batch:
        x = torch.randint(0, 256, (batch, 3, 50, 50), dtype=torch.uint8)
        assert torch.equal(engine.predict(x), unguarded(engine, x))
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(3):
            for fn in variants.values():
                fn(x)
        for _ in range(args.trials):
            for name, fn in variants.items():  # interleaved
                t0 = time.perf_counter()
                fn(x)
                times[name].append((time.perf_counter() - t0) * 1e6)
        med = {name: statistics.median(t) for name, t in times.items()}
        cells = ", ".join(f"{name} {med[name]:.0f} us ({min(t):.0f}-{max(t):.0f})" for name, t in times.items())
        print(f"batch {batch:4d}: {cells}; locked / unguarded = {med['predict (locked)'] / med['unguarded']:.3f}")
        logits = engine.predict(x)
        guard = []
        for _ in range(2000):
            t0 = time.perf_counter()
            with engine.lock:
                pass
            check_finite_logits(logits)
            guard.append((time.perf_counter() - t0) * 1e6)
        print(f"            the guard alone: {statistics.median(guard):.1f} us ({min(guard):.1f}-{max(guard):.1f}) "
              f"per call, {100 * statistics.median(guard) / min(times['unguarded']):.2f} % of the fastest "
              "unguarded call")


if __name__ == "__main__":
    main()
