"""The folded stage's rate after a narrow stage: fill a folded model with a trained narrow network, fine-tune it at
several rates, print validation top-1 per epoch (what FINETUNE_AFTER_NARROW_SCALE in foldedcnn/train/config.py rests
on).

    env PYTHONPATH=src .venv/bin/python benchmarks/narrow_polish.py RUN_DIR [--rates 3e-4,1e-4,3e-5] [--epochs 8]

RUN_DIR is a folded run of benchmarks/accuracy.py with a narrow stage (e.g. runs/accuracy/game-apex-squad-count/
f4-warm+distill-kl-n16-e4); its task's original (f1-ce-*) sits beside it. Each rate trains the filled model as the
library's folded stage does (the same fresh images after the narrow stage's, KL distillation toward the original,
warm-up, cosine), one run after the other in this process, into RUN_DIR/../polish-lr<rate>/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from foldedcnn.checkpoint import load_checkpoint
from foldedcnn.data import load_data
from foldedcnn.folded import FoldedModel
from foldedcnn.train import TrainConfig, train
from foldedcnn.train._fresh import FreshDraws
from foldedcnn.train.recipe import NARROW, load_teacher
from foldedcnn.transform import fill_blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a folded accuracy.py run with a narrow stage")
    parser.add_argument("--rates", default="3e-4,1e-4,3e-5")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = TrainConfig.from_dict(load_checkpoint(args.run / "best.safetensors").meta["training"])
    narrow_epochs = config.resolved_narrow_epochs()
    original = Path(config.init_from)
    narrow = load_checkpoint(args.run / NARROW / "best.safetensors", fold=1)
    reference = load_checkpoint(original, fold=1)
    train_set, val_set = load_data(config.data, "train"), load_data(config.data, "val")
    teacher = load_teacher(original, reference.model.input_shape)
    soft = teacher(train_set.images)
    print(f"{args.run}: narrow network {narrow_epochs} epochs, fold {config.fold}, data {config.data}", flush=True)
    for rate in (float(r) for r in args.rates.split(",")):
        torch.manual_seed(config.seed)
        folded = FoldedModel.from_zoo(config.model, config.fold, config.width_mult, config.align)
        fill_blocks(folded, narrow.model, reference.model.network)
        polish = TrainConfig(model=config.model, fold=config.fold, data=config.data, epochs=args.epochs,
                             batch=config.batch, lr=rate, schedule="cosine", warmup=1.0, curriculum="off",
                             distill_from=str(original), distill="kl", temperature=config.temperature,
                             distill_alpha=config.distill_alpha, align=config.align, fresh_data=config.fresh_data,
                             seed=config.seed, progress=False)
        with FreshDraws(config.data, args.epochs, 1, offset=narrow_epochs) as draws:
            result = train(folded, train_set, val_set, polish, teacher_logits=soft, normalization=narrow.normalization,
                           out=args.run.parent / f"polish-lr{rate:g}", draws=draws if config.fresh_data else None,
                           teacher=teacher)
        curve = " ".join(f"{h['val_top1']:.1f}" for h in result.history)
        print(f"lr {rate:g}: val top-1 per epoch {curve}; best {result.best_val_top1:.1f}", flush=True)


if __name__ == "__main__":
    main()
