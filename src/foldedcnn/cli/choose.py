"""`foldedcnn choose`: which fold to deploy, from accuracy and measured throughput at f = 1..4."""

from __future__ import annotations

from ._model import add_model_arguments


def register(sub) -> None:
    p = sub.add_parser("choose", help="train or reuse f=1..4, measure accuracy and images/s, recommend a fold")
    p.add_argument("data", help='data spec, e.g. "game-apex-squad-count?n_train=6000"')
    add_model_arguments(p, input_shape=False)  # the data gives the input shape
    p.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4], help="folds to compare (1 is always in)")
    p.add_argument("--max-drop", type=float, default=0.5, help="tolerated top-1 drop in points vs f=1 (default 0.5)")
    p.add_argument("--epochs", type=int, default=10, help="epochs of the original (f=1) from scratch")
    p.add_argument("--finetune-epochs", type=int,
                   help="epochs of each warm-started fold's narrow stage, then a quarter as many of the folded model "
                        "(default --epochs)")
    p.add_argument("--batch", type=int, default=32, help="training images per step")
    p.add_argument("--lr", type=float, help="learning rate of the original (folded runs use the fine-tune default)")
    p.add_argument("--fresh-data", action="store_true", help="new training images every epoch (generated data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda: where to train and measure")
    p.add_argument("--backend", default="auto", help="inference backend to time (auto: the fastest here)")
    p.add_argument("--measure-batch", type=int, default=1024, help="images per timed call")
    p.add_argument("--out", default="runs/choose", help="run directories (reused when finished) and frontier.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..choose import choose_fold
    from ..tables import format_table

    choice = choose_fold(args.data, args.model or args.module, model_kwargs=args.module_kwargs, folds=args.folds,
                         max_drop=args.max_drop, epochs=args.epochs,
                         finetune_epochs=args.finetune_epochs, batch=args.batch, lr=args.lr,
                         fresh_data=args.fresh_data, seed=args.seed, out=args.out, device=args.device,
                         backend=args.backend, measure_batch=args.measure_batch, progress=not args.no_progress)
    print(format_table(choice.rows(), ["fold", "top1", "drop", "images_per_s", "speedup", "backend", "trained",
                                       "frontier", "recommended"]))
    for c in choice.candidates:
        if c.note:
            print(f"f={c.fold}: {c.note}")
    rec = choice.recommended
    print(f"recommended: f={rec.fold} ({rec.top1:.2f}% test top-1, {rec.top1 - choice.reference.top1:+.2f} points "
          f"vs f=1; {rec.images_per_s:,.0f} images/s on {rec.backend}, within --max-drop {args.max_drop:g})")
    print(f"checkpoint: {rec.checkpoint}; plot: {args.out}/frontier.png")
    return 0
