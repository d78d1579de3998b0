"""Training speed, side by side: the trainer as it is (losses read from the device every CHECK_STEPS steps, fused
Adam on CUDA) against the same trainer reading the loss back every step with unfused Adam (what it did before
commit f60f45f: each step waited for the GPU). Same model, data, seed and settings; the two alternate over
--repeats.

    python benchmarks/train_speed.py --device cuda            # the game model of the GPU accuracy recipe
    python benchmarks/train_speed.py --device cpu --images 2000 --epochs 1 --repeats 1   # a check

Prints seconds per epoch of each (median and min-max over the repeats, the first epoch of each run left out as
warm-up) and their ratio; writes nothing.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import time
from contextlib import contextmanager
from unittest import mock

import torch

from foldedcnn.data import load_data
from foldedcnn.device import device_name
from foldedcnn.folded import FoldedModel
from foldedcnn.train import TrainConfig, train, trainer


@contextmanager
def waiting_every_step():
    """The trainer as it was: every step reads its loss from the device, Adam unfused."""
    def unfused(model, config, lr):
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    with mock.patch.object(trainer, "CHECK_STEPS", 1), mock.patch.object(trainer, "make_optimizer", unfused):
        yield


def epoch_seconds(model_name: str, fold: int, data, config: TrainConfig) -> list[float]:
    """Seconds of each epoch after the first of one training run (from the run's own per-epoch clock)."""
    torch.manual_seed(0)
    model = FoldedModel.from_zoo(model_name, fold)
    history = train(model, data, data, config).history
    ends = [h["seconds"] for h in history[1:]]  # cumulative training seconds at the end of each epoch
    return [b - a for a, b in itertools.pairwise(ends)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", default="game-apex-squad-count")
    ap.add_argument("--fold", type=int, default=2)
    ap.add_argument("--images", type=int, default=20000, help="training images (the GPU recipe's per epoch)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    data = load_data(f"{args.model}?n_train={args.images}&n_val=200&n_test=200", "train")
    config = TrainConfig(model=args.model, fold=args.fold, epochs=args.epochs + 1, batch=args.batch,
                         curriculum="off", device=args.device, progress=False)
    times: dict[str, list[float]] = {"async": [], "every step": []}
    for _ in range(args.repeats):
        times["async"] += epoch_seconds(args.model, args.fold, data, config)
        with waiting_every_step():
            times["every step"] += epoch_seconds(args.model, args.fold, data, config)
    print(f"{device_name(args.device)}, torch {torch.__version__}, {platform.system()}; {args.model} f = {args.fold}, "
          f"{args.images} images, batch {args.batch}: seconds per epoch, median (min-max) of {args.repeats} x "
          f"{args.epochs} epochs")
    for name, values in times.items():
        print(f"  {name:<10} {statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})")
    print(f"  every step / async: {statistics.median(times['every step']) / statistics.median(times['async']):.2f}")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"  ({time.perf_counter() - t0:.0f} s in all)")
