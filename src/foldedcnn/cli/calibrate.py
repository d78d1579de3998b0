"""`foldedcnn calibrate`: set the cascade's two thresholds to target error rates on held-out data (NoScope)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="calibrate the cascade thresholds of a two-class checkpoint "
                                         "(stored in it; `run` uses them)")
    p.add_argument("checkpoint", help="a two-class .safetensors checkpoint; its metadata gets the thresholds")
    p.add_argument("--data", required=True, help="data spec with held-out labelled frames (same task)")
    p.add_argument("--split", choices=["train", "val", "test"], default="val", help="split to calibrate on "
                                                                                    "(default val)")
    p.add_argument("--max-fn", type=float, default=0.01,
                   help="share of positive frames the cascade may call negative (default 0.01)")
    p.add_argument("--max-fp", type=float, default=0.01,
                   help="share of negative frames the cascade may call positive (default 0.01)")
    p.add_argument("--backend", default="auto", help="engine backend used to score the frames (default auto)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dry-run", action="store_true", help="print the thresholds without storing them")
    p.add_argument("--trust-code", action="store_true",
                   help="allow a checkpoint whose model is built by code it names; only for trusted files")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..label import calibrate_checkpoint

    c = calibrate_checkpoint(args.checkpoint, args.data, max_fn=args.max_fn, max_fp=args.max_fp, split=args.split,
                             backend=args.backend, device=args.device, save=not args.dry_run,
                             trust_code=args.trust_code)
    print(f"{args.checkpoint}: {c.frames} {c.split} frames of {c.data} ({c.positives} positive)")
    print(f"thresholds: --uncertain {c.low:.7g} {c.high:.7g}")
    print(f"false negatives {c.fn_rate:.2%} (target <= {c.max_fn:.2%}), "
          f"false positives {c.fp_rate:.2%} (target <= {c.max_fp:.2%})")
    print(f"expected share of frames sent to the reference model: {c.reference_share:.1%}")
    if not c.meets_targets:
        print("warning: no thresholds in [0, 1] meet the targets (the model is certain and wrong on some frames)")
    print("not stored (--dry-run)" if args.dry_run else "stored in the checkpoint; `foldedcnn run` uses them")
    return 0
