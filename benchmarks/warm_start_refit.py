"""Validation top-1 of a warm start before any training: the plain block copy against the least-squares refit.

For a trained f = 1 checkpoint of a game task, warm-starts f = 2 and 4 from it with --refit-images 0 (the
block copy of the most important channels) and with each N of --refit-images, and prints each one's top-1 on
the task's validation split (the CPU accuracy recipe's: n_train 6000, n_val 1000) and the seconds it took.

    env PYTHONPATH=src .venv/bin/python benchmarks/warm_start_refit.py game-apex-squad-count \
        RUNS/game-apex-squad-count/f1-ce-e12/best.safetensors
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from foldedcnn.checkpoint import load_checkpoint
from foldedcnn.data import load_data
from foldedcnn.folded import FoldedModel
from foldedcnn.train.evaluation import predict_logits
from foldedcnn.train.normalization import normalize
from foldedcnn.transform import warm_start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("task", help="a game task, e.g. game-apex-squad-count")
    p.add_argument("checkpoint", help="its trained f = 1 checkpoint")
    p.add_argument("--folds", nargs="+", type=int, default=[2, 4])
    p.add_argument("--refit-images", nargs="+", type=int, default=[0, 1024])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    spec = f"{args.task}?n_train=6000&n_val=1000&n_test=2000"
    train, val = load_data(spec, "train"), load_data(spec, "val")
    ck = load_checkpoint(args.checkpoint, fold=1, input_shape=tuple(val.images.shape[1:]))

    def top1(model: FoldedModel) -> float:
        return 100 * float((predict_logits(model, val.images, ck.normalization).argmax(1) == val.labels).float().mean())

    print(f"{args.task}: original {top1(ck.model):.1f} % val top-1")
    for fold in args.folds:
        for n in args.refit_images:
            model = FoldedModel.from_zoo(args.task, fold)
            t0 = time.perf_counter()
            calibration = normalize(train.images[:n], ck.normalization) if n else None
            warm_start(model, ck.model.network, calibration=calibration)
            print(f"f = {fold}, refit images {n}: {top1(model):.1f} % ({time.perf_counter() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
