"""The folded stage after a narrow stage: fill a folded model with a trained narrow network, fine-tune it at several
rates, print validation top-1 per epoch (what FINETUNE_AFTER_NARROW_SCALE in foldedcnn/train/config.py rests on).

    env PYTHONPATH=src .venv/bin/python benchmarks/narrow_polish.py RUN_DIR [--rates 3e-4,1e-4,3e-5] [--epochs 8]
        [--between 1,10] [--distill]

RUN_DIR is a folded run of benchmarks/accuracy.py with a narrow stage (e.g. /work/runs-block/game-apex-squad-count/
f4-warm-n16-e4-a8-lr0.005); its task's original sits where its config's init_from says. Each rate trains the filled
model as that run's folded stage was trained (its config: the fresh images after the narrow stage's, weight decay,
schedule), with only the epochs and the rate replaced, one run after the other in this process, into
RUN_DIR/../polish-lr<rate>-e<epochs>[-between<m>]/. `--distill`: KL distillation toward the original as well
(the recipe of the first table, benchmarks/results/narrow_polish.md).

`--between M`: the weights between image blocks (zero after fill_blocks: the capacity the folded network shares
across its images, which the narrow network does not have) learn at M times the rate of the others (two Adam
states per weight, split by that mask). Does a faster start there put the shared capacity to use?
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from foldedcnn.checkpoint import load_checkpoint
from foldedcnn.data import load_data
from foldedcnn.folded import FoldedModel
from foldedcnn.train import TrainConfig, train
from foldedcnn.train import trainer as _trainer
from foldedcnn.train._fresh import FreshDraws
from foldedcnn.train.recipe import NARROW, load_teacher
from foldedcnn.transform import fill_blocks


class BetweenBlocksAdam(torch.optim.Optimizer):
    """Adam (L2 weight decay, as torch.optim.Adam) whose entries under `between` (a mask per parameter) learn at
    `mult` times the rate, with moments of their own."""

    def __init__(self, params, lr: float, weight_decay: float, between: dict[torch.Tensor, torch.Tensor],
                 mult: float) -> None:
        super().__init__(list(params), {"lr": lr, "weight_decay": weight_decay})
        self.between, self.mult = between, mult

    @torch.no_grad()
    def step(self, closure=None) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros(2, *p.shape), v=torch.zeros(2, *p.shape))
                state["t"] += 1
                t, outside = state["t"], self.between[p]
                grad = p.grad + group["weight_decay"] * p
                for k, (mask, lr) in enumerate(((1 - outside, group["lr"]), (outside, group["lr"] * self.mult))):
                    g = grad * mask
                    state["m"][k].mul_(0.9).add_(g, alpha=0.1)
                    state["v"][k].mul_(0.999).addcmul_(g, g, value=0.001)
                    step = state["m"][k] / (1 - 0.9**t) / ((state["v"][k] / (1 - 0.999**t)).sqrt() + 1e-8)
                    p.add_(step * mask, alpha=-lr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a folded accuracy.py run with a narrow stage")
    parser.add_argument("--rates", default="3e-4,1e-4,3e-5")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--between", default="1", help="rate multipliers for the weights between image blocks")
    parser.add_argument("--distill", action="store_true", help="also distill toward the original (KL)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = TrainConfig.from_dict(load_checkpoint(args.run / "best.safetensors").meta["training"])
    narrow_epochs = config.resolved_narrow_epochs()
    original = Path(config.init_from)
    narrow = load_checkpoint(args.run / NARROW / "best.safetensors", fold=1)
    reference = load_checkpoint(original, fold=1)
    train_set, val_set = load_data(config.data, "train"), load_data(config.data, "val")
    teacher = load_teacher(original, reference.model.input_shape) if args.distill else None
    soft = teacher(train_set.images) if teacher else None
    print(f"{args.run}: narrow network {narrow_epochs} epochs, fold {config.fold}, data {config.data}", flush=True)
    for rate in (float(r) for r in args.rates.split(",")):
        for mult in (float(m) for m in args.between.split(",")):
            torch.manual_seed(config.seed)
            folded = FoldedModel.from_zoo(config.model, config.fold, config.width_mult, config.align)
            fill_blocks(folded, narrow.model, reference.model.network)
            between = {p: (p == 0).float() if p.dim() >= 2 else torch.zeros_like(p) for p in folded.parameters()}
            # the run's folded stage with `rate` (a config without init_from, so the rate is taken as given) and its
            # warm start's schedule, warm-up and no curriculum pinned
            steps = -(-train_set.labels.numel() // config.batch_images())
            polish = replace(config, epochs=args.epochs, lr=rate, init_from=None, narrow_epochs=None, progress=False,
                             schedule=config.resolved_schedule(), curriculum="off",
                             warmup=replace(config, epochs=args.epochs).resolved_warmup(steps),
                             **({"distill_from": str(original), "distill": "kl"} if args.distill else {}))
            _trainer.make_optimizer = (lambda model, cfg, lr, between=between, mult=mult: BetweenBlocksAdam(
                model.parameters(), lr, cfg.weight_decay, between, mult))
            name = f"polish-lr{rate:g}-e{args.epochs}" + (f"-between{mult:g}" if mult != 1 else "")
            with FreshDraws(config.data, args.epochs, 1, offset=narrow_epochs) as draws:
                result = train(folded, train_set, val_set, polish, teacher_logits=soft,
                               normalization=narrow.normalization, out=args.run.parent / name,
                               draws=draws if config.fresh_data else None, teacher=teacher)
            curve = " ".join(f"{h['val_top1']:.1f}" for h in result.history)
            print(f"lr {rate:g}, between blocks x{mult:g}: val top-1 per epoch {curve}; best "
                  f"{result.best_val_top1:.1f}", flush=True)


if __name__ == "__main__":
    main()
