"""Training speed, side by side: the trainer as it is against the same trainer as it was before one change.

--against every-step: losses read from the device every CHECK_STEPS steps, fused Adam on CUDA, against reading
the loss back every step with unfused Adam (what it did before commit f60f45f: each step waited for the GPU).
--against plain-layout: conv weights channels_last on the CPU (device.fast_layout) against the plain layout (before
commit 6887815); also times predict_logits (validation, a teacher's logits) over the same images both ways.
Same model, data, seed and settings; the two alternate over --repeats.

    python benchmarks/train_speed.py --device cuda            # the game model of the GPU accuracy recipe
    python benchmarks/train_speed.py --device cpu --against plain-layout --model game-lol-gold-int --fold 4 \
        --images 6000 --batch 32 --threads 1                    # the CPU accuracy recipe's gold-int f = 4
    python benchmarks/train_speed.py --device cpu --images 2000 --epochs 1 --repeats 1   # a check

Prints seconds per epoch (validation on the training images included) of each, median and min-max over the
repeats, the first epoch of each run left out as warm-up, and their ratio; writes nothing.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import time
from contextlib import contextmanager, nullcontext
from unittest import mock

import torch

from foldedcnn.data import load_data
from foldedcnn.device import device_name
from foldedcnn.folded import FoldedModel
from foldedcnn.train import TrainConfig, compute_normalization, evaluation, predict_logits, train, trainer


@contextmanager
def waiting_every_step():
    """The trainer as it was: every step reads its loss from the device, Adam unfused."""
    def unfused(model, config, lr):
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    with mock.patch.object(trainer, "CHECK_STEPS", 1), mock.patch.object(trainer, "make_optimizer", unfused):
        yield


@contextmanager
def plain_layout():
    """The trainer and predict_logits as they were: weights in the layout the model was built with."""
    def unchanged(module, device):
        return module
    with mock.patch.object(trainer, "fast_layout", unchanged), mock.patch.object(evaluation, "fast_layout", unchanged):
        yield


BEFORE = {"every-step": waiting_every_step, "plain-layout": plain_layout}


def predict_seconds(model_name: str, fold: int, data, device: str) -> float:
    """Seconds of predict_logits over `data` (a fresh model of `model_name` at `fold`), timed after one untimed call."""
    model = FoldedModel.from_zoo(model_name, fold)
    norm = compute_normalization(data.images)
    predict_logits(model, data.images, norm, device=device)
    t0 = time.perf_counter()
    predict_logits(model, data.images, norm, device=device)
    return time.perf_counter() - t0


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
    ap.add_argument("--against", choices=sorted(BEFORE), default="every-step", help="the trainer before which change")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_data(f"{args.model}?n_train={args.images}&n_val=200&n_test=200", "train")
    config = TrainConfig(model=args.model, fold=args.fold, epochs=args.epochs + 1, batch=args.batch,
                         curriculum="off", device=args.device, progress=False)
    now, before = "now", args.against
    times: dict[str, list[float]] = {now: [], before: []}
    predicts: dict[str, list[float]] = {now: [], before: []}
    for _ in range(args.repeats):
        for name in (now, before):
            with BEFORE[args.against]() if name == before else nullcontext():
                times[name] += epoch_seconds(args.model, args.fold, data, config)
                if args.against == "plain-layout":
                    predicts[name].append(predict_seconds(args.model, args.fold, data, args.device))
    print(f"{device_name(args.device)}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{platform.system()}; {args.model} f = {args.fold}, {args.images} images, batch {args.batch}: seconds, "
          f"median (min-max) of {args.repeats} repeats")
    for what, table in (("per epoch", times), ("predict_logits", predicts)):
        if table[now]:
            for name, values in table.items():
                print(f"  {what:<14} {name:<12} {statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})")
            ratio = statistics.median(table[before]) / statistics.median(table[now])
            print(f"  {what:<14} {before} / now: {ratio:.2f}")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"  ({time.perf_counter() - t0:.0f} s in all)")
