"""`foldedcnn eval`: per-image top-1 of a checkpoint on a data split, with a confusion summary."""

from __future__ import annotations

import json

PER_CLASS_LIMIT = 20  # print per-class accuracy when K is at most this


def register(sub) -> None:
    p = sub.add_parser("eval", help="top-1 and confusion summary of a checkpoint on a data split")
    p.add_argument("checkpoint", help="a .safetensors checkpoint written by `foldedcnn train`")
    p.add_argument("--data", required=True, help="data spec (same task as the checkpoint)")
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument("--batch", type=int, default=1024, help="images per forward pass")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trust-code", action="store_true",
                   help="allow a checkpoint whose model is built by code it names; only for trusted files")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..checkpoint import load_checkpoint
    from ..data import load_data
    from ..device import resolve_device
    from ..errors import ShapeError
    from ..train import evaluate

    resolve_device(args.device)  # before loading anything
    data = load_data(args.data, args.split)
    ck = load_checkpoint(args.checkpoint, input_shape=tuple(data.images.shape[1:]), device=args.device,
                         trust_code=args.trust_code)
    if len(data.class_names) != ck.model.num_classes:
        raise ShapeError(f"{args.data} has {len(data.class_names)} classes, the checkpoint {ck.model.num_classes}")
    ev = evaluate(ck.model, data.images, data.labels, ck.normalization, batch=args.batch, device=args.device)
    names = ck.class_names
    confused = [{"true": names[t], "predicted": names[p], "count": c} for t, p, c in ev.top_confusions(10)]
    per_class = {names[k]: acc for k, acc in enumerate(ev.per_class_top1())}
    summary = {"checkpoint": str(args.checkpoint), "data": args.data, "split": args.split, "fold": ck.model.fold,
               "images": int(data.labels.numel()), "top1": round(ev.top1, 4), "top_confusions": confused}
    if len(names) <= PER_CLASS_LIMIT:
        summary["per_class_top1"] = per_class
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{args.checkpoint}: fold={ck.model.fold}, {summary['images']} {args.split} images of {args.data}")
    print(f"top-1 (per image): {ev.top1:.2f}%")
    if confused:
        print("most confused (true -> predicted: count):")
        for row in confused:
            print(f"  {row['true']} -> {row['predicted']}: {row['count']}")
    if "per_class_top1" in summary:
        print("per-class top-1:")
        for name, acc in per_class.items():
            print(f"  {name}: {'n/a' if acc is None else f'{acc:.2f}%'}")
    return 0
