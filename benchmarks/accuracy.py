"""Accuracy of FoldedCNNs against the original (f = 1): game HUD tasks, vtest person-in-region, Fashion-MNIST.

Writes benchmarks/results/accuracy.csv and accuracy.md. Every run trains with foldedcnn.train (fold-mixed
batches, best-on-validation checkpoint) and reports per-image top-1 on the test split of that checkpoint.
Runs are resumable: each writes runs/accuracy/<task>/f<F>-<method>/ and a finished run is not redone.

    flock /tmp/foldedcnn-heavy.lock env PYTHONPATH=src .venv/bin/python benchmarks/accuracy.py

Budget: the whole experiment is sized for ~35 minutes on 2 CPU cores (small train sets, few epochs);
see TASKS. The paper's GPU-scale training (hundreds of epochs, full data) is not reproduced here.
"""

from __future__ import annotations

import argparse
import csv
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from foldedcnn.analysis.probe import device_name
from foldedcnn.checkpoint import load_checkpoint
from foldedcnn.data import LabelledImages, load_data
from foldedcnn.folded import FoldedModel
from foldedcnn.train import TrainConfig, evaluate, teacher_logits, train
from foldedcnn.transform import fold_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
COLUMNS = ["task", "model", "fold", "method", "top1", "delta", "goal", "epochs", "n_train", "n_test", "batch",
           "lr", "train_seconds", "device", "seed"]


def fashion_cnn() -> nn.Module:
    """General-purpose CNN for 3x32x32 Fashion-MNIST (N, 3, 32, 32) -> (N, 10): a stand-in for resnet18-cifar10,
    which is too slow to train on 2 CPU cores. Folded generically with fold_model."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


@dataclass
class Task:
    """One accuracy comparison: a model on a data spec at several folds, with methods for the folded runs."""

    name: str
    model: str
    data: str
    folds: tuple[int, ...]
    epochs: int
    batch: int
    lr: float
    goal: float  # allowed drop in top-1 points from the original
    folded_methods: tuple[str, ...] = ("ce",)
    extra_runs: tuple[tuple[int, str], ...] = ()  # (fold, method) tried in addition
    n_train: int | None = None  # subsample the train and val splits (data specs without a size option)
    n_val: int | None = None


# Methods of a folded run. ce: cross-entropy only. distill-*: 0.5 CE + 0.5 distillation toward the f=1
# checkpoint's logits (mse: the paper's, on logits; kl: temperature 4). ce+curriculum: the paper's class
# curriculum over the first half of the epochs. "x3" suffix: three times the epochs.
METHODS = {
    "ce": {},
    "ce+curriculum": {"curriculum": "on"},
    "distill-mse": {"distill_from": True, "distill": "mse"},
    "distill-kl": {"distill_from": True, "distill": "kl", "temperature": 4.0},
    "distill-kl-x3": {"distill_from": True, "distill": "kl", "temperature": 4.0, "epochs_mult": 3},
}
FOLDED = ("ce", "distill-kl")
TASKS = [
    Task("game-lol-gold-int", "game-lol-gold-int", "game-lol-gold-int?n_train=6000&n_val=1000&n_test=2000",
         (1, 2, 3, 4), epochs=10, batch=32, lr=3e-4, goal=0.5, folded_methods=FOLDED,
         extra_runs=((2, "distill-mse"), (3, "distill-mse"), (4, "distill-mse"), (4, "ce+curriculum"),
                     (4, "distill-kl-x3"))),
    Task("game-apex-squad-count", "game-apex-squad-count",
         "game-apex-squad-count?n_train=6000&n_val=1000&n_test=2000", (1, 2, 3, 4), epochs=8, batch=32, lr=3e-4,
         goal=0.5, folded_methods=FOLDED, extra_runs=((2, "distill-kl-x3"), (4, "distill-kl-x3"))),
    Task("game-sot-coin-count", "game-sot-coin-count", "game-sot-coin-count?n_train=6000&n_val=1000&n_test=2000",
         (1, 2, 3, 4), epochs=8, batch=32, lr=3e-4, goal=0.5, folded_methods=FOLDED),
    Task("vtest", "noscope-coral", "vtest", (1, 2, 3, 4), epochs=20, batch=32, lr=1e-3, goal=0.5,
         folded_methods=FOLDED),
    Task("fashion-mnist", "fashion-cnn (fold_model)", "fashion-mnist?size=32&channels=3", (1, 4), epochs=6,
         batch=64, lr=1e-3, goal=2.0, folded_methods=FOLDED, n_train=12000, n_val=2000,
         extra_runs=((4, "distill-kl-x3"),)),
]


def subsample(data: LabelledImages, n: int | None, seed: int) -> LabelledImages:
    """The first n images of a seeded permutation of `data` (all of it when n is None)."""
    if n is None or n >= data.labels.numel():
        return data
    idx = torch.randperm(data.labels.numel(), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return LabelledImages(data.images[idx], data.labels[idx], data.class_names, data.name)


def build(task: Task, fold: int, seed: int) -> FoldedModel:
    """The task's model at `fold`, initialised from `seed`."""
    torch.manual_seed(seed)
    if task.model.startswith("fashion-cnn"):
        source = {"factory": "accuracy:fashion_cnn", "kwargs": {}}
        return fold_model(fashion_cnn(), fold, torch.randn(2, 3, 32, 32), source=source)
    return FoldedModel.from_zoo(task.model, fold)


def machine() -> str:
    return f"{device_name('cpu')}, {torch.get_num_threads()} threads, torch {torch.__version__}, {platform.system()}"


def run_task(task: Task, seed: int, runs: Path, rows: list[dict]) -> None:
    train_set = subsample(load_data(task.data, "train"), task.n_train, seed)
    val_set, test_set = subsample(load_data(task.data, "val"), task.n_val, seed), load_data(task.data, "test")
    original_dir = runs / task.name / "f1-ce"
    original_top1 = None
    plan = [(f, m) for f in task.folds for m in (("ce",) if f == 1 else task.folded_methods)]
    for fold, method in plan + list(task.extra_runs):
        out = runs / task.name / f"f{fold}-{method}"
        options = {"curriculum": "off", **METHODS[method]}
        epochs = task.epochs * options.pop("epochs_mult", 1)
        if options.pop("distill_from", False):
            options["distill_from"] = str(original_dir / "best.safetensors")
        config = TrainConfig(model=task.model, fold=fold, data=task.data, epochs=epochs, batch=task.batch,
                             lr=task.lr, seed=seed, distill_alpha=0.5, progress=False,
                             **options)
        soft = teacher_logits(config.distill_from, train_set.images) if config.distill_from else None
        t0 = time.perf_counter()
        result = train(build(task, fold, seed), train_set, val_set, config, teacher_logits=soft, out=out)
        best = load_checkpoint(result.best_path, fold=fold)
        top1 = evaluate(best.model, test_set.images, test_set.labels, best.normalization).top1
        if fold == 1:
            original_top1 = top1
        delta = None if original_top1 is None else top1 - original_top1
        rows.append({"task": task.name, "model": task.model, "fold": fold, "method": method,
                     "top1": round(top1, 2), "delta": None if delta is None else round(delta, 2),
                     "goal": "" if fold == 1 else ("met" if delta >= -task.goal else f"missed by "
                                                       f"{-delta - task.goal:.2f}"),
                     "epochs": epochs, "n_train": train_set.labels.numel(),
                     "n_test": test_set.labels.numel(), "batch": task.batch, "lr": task.lr,
                     "train_seconds": round(result.seconds, 1), "device": "cpu", "seed": seed})
        print(rows[-1], f"(wall {time.perf_counter() - t0:.0f} s)", flush=True)


def write(rows: list[dict], command: str, total: float) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "accuracy.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["# FoldedCNN accuracy vs the original (f = 1)", "",
             "Per-image top-1 (%) on the test split, best-on-validation checkpoint. delta = folded - original;",
             "goal: within 0.5 points (game, vtest) or 2 points (Fashion-MNIST) of the original.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join("" if r[c] is None else str(r[c]) for c in COLUMNS) + " |" for r in rows]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    lines += ["", f"Command: `{command}`", f"Machine: {machine()}; commit {commit.strip()}",
              f"Wall time of this invocation: {total / 60:.1f} min (finished runs in --runs are not redone, only "
              f"re-evaluated); sum of train_seconds over all rows: {sum(r['train_seconds'] for r in rows) / 60:.1f} "
              "min.",
              "CPU only: the GPU training run (full data, paper epochs, mixed precision) is still owed."]
    (RESULTS / "accuracy.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(t.name for t in TASKS), help="comma-separated task names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="1: the shared 2-core machine thrashes with 2")
    parser.add_argument("--runs", default=str(ROOT / "runs" / "accuracy"), help="where run directories go")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wanted = args.tasks.split(",")
    start, rows = time.perf_counter(), []
    command = "flock /tmp/foldedcnn-heavy.lock env PYTHONPATH=src .venv/bin/python benchmarks/accuracy.py " + " ".join(
        sys.argv[1:])
    for task in TASKS:
        if task.name in wanted:
            run_task(task, args.seed, Path(args.runs), rows)
            write(rows, command, time.perf_counter() - start)  # after every task, so partial results survive


if __name__ == "__main__":
    main()
