"""Is data loading or training the bottleneck? Loader vs model training throughput on CPU, in images/s.

    flock /tmp/foldedcnn-heavy.lock env PYTHONPATH=src .venv/bin/python benchmarks/loader_vs_train.py

loader:   FoldBatcher over an in-memory game-lol-gold-int set (fold-mixing shuffle, gather, pad) plus the
          step's input preparation (uint8 -> float /255, fold_images).
generate: generate_game itself (one worker), i.e. making fresh data every epoch.
train:    forward + backward + Adam step of create_model(task, fold=f) on those batches (torch CPU).
Each: median of --repeats passes (after a warm-up), min-max. Writes benchmarks/results/loader_vs_train.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from foldedcnn.data import FoldBatcher, load_data
from foldedcnn.data.game import generate_game
from foldedcnn.device import device_name
from foldedcnn.layout import fold_images, unfold_logits
from foldedcnn.models import create_model
from foldedcnn.tables import format_table, markdown_table

TASK = "game-lol-gold-int"


def timed(fn, images: int, repeats: int) -> list[float]:
    fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(images / (time.perf_counter() - t0))
    return out



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4096, help="images per loader pass")
    p.add_argument("--batch", type=int, default=256, help="images per batch (a multiple of every fold)")
    p.add_argument("--train-batches", type=int, default=6, help="batches per timed training pass")
    p.add_argument("--folds", type=int, nargs="*", default=[1, 4])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "loader_vs_train.md")
    args = p.parse_args()
    torch.manual_seed(0)
    data = load_data(f"{TASK}?n_train={args.n}", "train")
    loss_fn = nn.CrossEntropyLoss()
    rows = []
    gen = timed(lambda: generate_game(TASK, "train", args.n, seed=1), args.n, args.repeats)
    rows.append({"what": "generate (1 worker)", "fold": "-", "images_per_s": statistics.median(gen),
                 "min": min(gen), "max": max(gen)})
    for fold in args.folds:
        batcher = FoldBatcher(data, fold, args.batch, seed=0)

        def load_pass(batcher=batcher, fold=fold):
            for batch in batcher:
                fold_images(batch.images.float().div_(255), fold)

        loader = timed(load_pass, args.n, args.repeats)
        model = create_model(TASK, fold=fold)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)
        batches = [b for _, b in zip(range(args.train_batches), batcher, strict=False)]

        def train_pass(model=model, opt=opt, batches=batches, fold=fold):
            for b in batches:
                folded = fold_images(b.images.float().div_(255), fold)
                logits = unfold_logits(model(folded.images), fold, folded.num_images)
                loss = loss_fn(logits, b.labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        train = timed(train_pass, args.batch * len(batches), args.repeats)
        for what, r in (("loader", loader), ("train step", train)):
            rows.append({"what": what, "fold": fold, "images_per_s": statistics.median(r), "min": min(r),
                         "max": max(r)})
        ratio = statistics.median(loader) / statistics.median(train)
        print(f"f={fold}: loader {statistics.median(loader):,.0f} images/s, training {statistics.median(train):,.0f} "
              f"images/s -> the loader is {ratio:,.0f}x faster than training", flush=True)
    print(format_table(rows))
    verdict = ("Loading is not the bottleneck: the in-memory FoldBatcher outruns CPU training by orders of "
               "magnitude at every fold, and even regenerating the data each epoch is faster than training.")
    if min(r["images_per_s"] for r in rows if r["what"] != "train step") < max(
            r["images_per_s"] for r in rows if r["what"] == "train step"):
        verdict = "Loading can be the bottleneck here: some data path is slower than a training step."
    print(verdict)
    machine = (f"{device_name('cpu')}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
               f"Python {platform.python_version()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        f"# Data loader vs training throughput ({TASK}, CPU)\n\n"
        "Command: `flock /tmp/foldedcnn-heavy.lock env PYTHONPATH=src .venv/bin/python benchmarks/loader_vs_train.py"
        f" --n {args.n} --batch {args.batch}`\n\nMachine: {machine}; shared with other jobs. Median of "
        f"{args.repeats} passes, min-max; images/s (never folded inputs).\n\n{markdown_table(rows)}\n\n{verdict}\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
