"""`foldedcnn train`: train a zoo model or your own (`--module`), original (f=1) or folded, on a data spec."""

from __future__ import annotations

from ._model import add_model_arguments
from ._width_args import add_width_args


def register(sub) -> None:
    p = sub.add_parser("train", help="train a (folded) zoo model or your own; resumable, best checkpoint on validation")
    add_model_arguments(p, input_shape=False)  # the data gives the input shape
    p.add_argument("--fold", type=int, default=1, help="images per folded input (default 1: the original)")
    p.add_argument("--data", required=True, help='data spec, e.g. "game-lol-gold-int?n_train=5000", "vtest"')
    p.add_argument("--distill-from", metavar="CKPT", help="teacher checkpoint (usually the f=1 original)")
    p.add_argument("--init-from", metavar="CKPT",
                   help="warm-start a folded model from this trained f=1 checkpoint of the same model "
                        "(block copies of its most important channels; usually with --distill-from it too). "
                        "Makes the defaults a fine-tune: lr 0.1x to 1x the default as the warm start kept more or "
                        "less of the original's validation top-1, warm-up (1 epoch or 100 steps), cosine decay, "
                        "no curriculum")
    p.add_argument("--narrow-epochs", type=int, metavar="N",
                   help="with --init-from at --fold > 1: first train the narrow network (one image's block: the "
                        "original with every hidden width cut to the folded one // fold, at fold 1) for N "
                        "epochs, warm-started and distilled like the folded model, into OUT/narrow; then copy it "
                        "into every image's block and fine-tune the folded model for --epochs at 0.03x the "
                        "default rate (the narrow stage runs at 5x the fine-tune rate, or at --lr if given; "
                        "default N: --epochs; 0: fine-tune the folded warm start directly)")
    p.add_argument("--refit-images", type=int, default=1024, metavar="N",
                   help="with --init-from: refit the warm start's blocks by least squares to the original's layer "
                        "outputs on N training images (default 1024; 0: the plain block copy)")
    p.add_argument("--distill", choices=["mse", "kl"], default="mse", help="distillation loss (default mse)")
    p.add_argument("--distill-alpha", type=float, default=0.5, help="weight of distillation vs CE (default 0.5)")
    p.add_argument("--temperature", type=float, default=1.0, help="softening temperature of --distill kl")
    p.add_argument("--curriculum", choices=["auto", "on", "off"], default="auto",
                   help="admit classes gradually (auto: on for fold > 1 with >= 10 classes, off with --init-from)")
    p.add_argument("--curriculum-epochs", type=int, help="epochs over which classes are admitted (default epochs/2)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=256, help="images per step (rounded up to a multiple of fold)")
    p.add_argument("--lr", type=float,
                   help="learning rate (default 1e-3; with --init-from 1e-4 to 1e-3, see --init-from; the paper's 1e-4 "
                        "from scratch needs far more epochs)")
    p.add_argument("--schedule", choices=["auto", "constant", "cosine"], default="auto",
                   help="learning rate over the run: constant, or cosine decay to 0 (auto: cosine with --init-from, "
                        "else constant)")
    p.add_argument("--warmup", type=float,
                   help="epochs of linear learning-rate warm-up from 0 (default with --init-from: 1 epoch or 100 "
                        "steps, whichever is longer; else 0)")
    p.add_argument("--optimizer", choices=["auto", "adam", "rmsprop"], default="auto",
                   help="auto: RMSprop for NoScope, Adam otherwise (the paper's)")
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    add_width_args(p)
    p.add_argument("--width-mult", type=float, help="override the sqrt(fold) widening")
    p.add_argument("--fresh-data", action="store_true",
                   help="new training images every epoch (generated data only; validation and test stay fixed)")
    p.add_argument("--data-workers", type=int, default=1,
                   help="processes drawing the fresh images of the next epochs during training (default 1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (mixed precision on cuda)")
    p.add_argument("--out", default="runs/train", help="directory for best.safetensors, last.safetensors, metrics")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--trust-code", action="store_true",
                   help="allow --init-from / --distill-from checkpoints whose model is built by code they name "
                        "(your own --module model's); only for trusted files")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..train import TrainConfig, narrow_history, train_from_config

    config = TrainConfig.from_dict({**vars(args), "model": args.model or args.module,
                                    "model_kwargs": args.module_kwargs, "progress": not args.no_progress})
    result = train_from_config(config, out=args.out, trust_code=args.trust_code)
    start, last = result.history[0], result.history[-1]  # row 0: the model before training (after a narrow stage)
    stage = narrow_history(args.out)
    if stage:
        print(f"narrow stage: {stage[-1]['epoch']} epochs, val top-1 {stage[0]['val_top1']:.2f}% warm-started, best "
              f"{max(h['val_top1'] for h in stage):.2f}% (copied into every image's block: the folded start below)")
    print(f"trained {config.model} fold={args.fold}: {last['epoch']} epochs in {result.seconds:.1f} s, val top-1 "
          f"{start['val_top1']:.2f}% before, {last['val_top1']:.2f}% at the end, best {result.best_val_top1:.2f}%")
    print(f"best checkpoint: {result.best_path}")
    return 0
