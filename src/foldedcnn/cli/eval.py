"""`foldedcnn eval`: top-1, per-class precision / recall / F1 and the confusion matrix of a checkpoint."""

from __future__ import annotations

import json

DETAIL_LIMIT = 20  # per-class scores and the confusion matrix when K is at most this


def register(sub) -> None:
    p = sub.add_parser("eval", help="top-1, per-class precision/recall/F1 and confusions of a checkpoint on a split")
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
    from ..data import check_class_names, load_data
    from ..device import resolve_device
    from ..errors import ShapeError
    from ..tables import format_table
    from ..train import evaluate

    resolve_device(args.device)  # before loading anything
    data = load_data(args.data, args.split)
    ck = load_checkpoint(args.checkpoint, input_shape=tuple(data.images.shape[1:]), device=args.device,
                         trust_code=args.trust_code)
    if len(data.class_names) != ck.model.num_classes:
        raise ShapeError(f"{args.data} has {len(data.class_names)} classes, the checkpoint {ck.model.num_classes}")
    check_class_names(data.class_names, ck.class_names, args.data)
    ev = evaluate(ck.model, data.images, data.labels, ck.normalization, batch=args.batch, device=args.device)
    summary = {"checkpoint": str(args.checkpoint), "data": args.data, "split": args.split, "fold": ck.model.fold,
               "images": int(data.labels.numel()), **ev.to_dict(ck.class_names, DETAIL_LIMIT)}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{args.checkpoint}: fold={ck.model.fold}, {summary['images']} {args.split} images of {args.data}")
    macro = "n/a" if summary["macro_f1"] is None else f"{summary['macro_f1']:.2f}%"
    print(f"top-1 (per image): {ev.top1:.2f}%   macro F1: {macro}")
    if summary["top_confusions"]:
        print("most confused (true -> predicted: count):")
        for row in summary["top_confusions"]:
            print(f"  {row['true']} -> {row['predicted']}: {row['count']}")
    if "per_class" in summary:
        print("per class (%; recall is the per-class top-1):")
        print(format_table([{"class": name, **row} for name, row in summary["per_class"].items()],
                           ["class", "support", "precision", "recall", "f1"]))
        print("confusion matrix (rows: true, columns: predicted):")
        names, matrix = summary["confusion"]["classes"], summary["confusion"]["matrix"]
        print(format_table([{"true": t, **dict(zip(names, row, strict=True))} for t, row in zip(names, matrix,
                                                                                                 strict=True)],
                           ["true", *names]))
    return 0
