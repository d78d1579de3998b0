"""`foldedcnn data`: make offline data sets — generated game HUDs and NoScope-style video tasks."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("data", help="generate or prepare data sets (game HUDs, video tasks)")
    kinds = p.add_subparsers(dest="data_command", required=True, metavar="KIND")

    g = kinds.add_parser("game", help="generate images of a game-scraping task")
    g.add_argument("task", help="a game task, e.g. game-lol-gold-fraction")
    g.add_argument("--n", type=int, required=True, help="number of images")
    g.add_argument("--out", type=Path, required=True, help="output folder (SPLIT.npz + meta.json)")
    g.add_argument("--split", default="train", choices=("train", "val", "test"), help="seed stream (default train)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--holdout-fonts", type=int, default=0, help="keep the last K fonts out of train")
    g.add_argument("--workers", type=int, default=1, help="processes rendering in parallel (same output)")
    g.add_argument("--folder", action="store_true", help="also export as an ImageFolder OUT/SPLIT/CLASS/*.png")
    g.add_argument("--preview", type=Path, help="write a PNG grid of examples")
    g.set_defaults(func=run_game)

    v = kinds.add_parser("video", help="label a region of a video: 'vtest' or a video file")
    v.add_argument("video", help="'vtest' (the recipe on vtest.avi) or a video path")
    v.add_argument("--out", type=Path, required=True, help="output folder ({train,val,test}.npz + meta.json)")
    v.add_argument("--roi", type=int, nargs=4, metavar=("X", "Y", "W", "H"),
                   help="region of interest (video path), in the frame as players show it (a phone's portrait video "
                        "turned)")
    v.add_argument("--labels", type=Path, help="NoScope labels CSV (frame, object_name, ...); default: MOG2 oracle")
    v.add_argument("--object", default="person", help="object name for the CSV and the class names")
    v.add_argument("--threshold", type=float, default=0.02, help="oracle: foreground share of the region")
    v.add_argument("--min-overlap", type=float, default=0.5,
                   help="--labels with boxes: a box counts when at least this share of its area is inside the "
                        "region (default 0.5)")
    v.add_argument("--stride", type=int, default=1, help="keep every STRIDE-th frame")
    v.add_argument("--split-mode", choices=["contiguous", "blocks"], default="contiguous",
                   help="contiguous: train/val/test are one 60/20/20 chunk each (default; neighbouring frames "
                        "meet only at two boundaries); blocks: blocks of --block-frames frames dealt out 3:1:1")
    v.add_argument("--block-frames", type=int, help="kept frames per block of --split-mode blocks")
    v.add_argument("--allow-empty-class", action="store_true",
                   help="save even when a split has no positive or no negative frame (an error otherwise)")
    v.add_argument("--preview", type=Path, help="write a PNG grid of positives and negatives")
    v.set_defaults(func=run_video)


def run_game(args) -> int:
    from ..data.folder import export_folder
    from ..data.game import generate_game
    from ..data.preview import save_preview
    from ..data.store import save_split, write_meta
    from ..errors import FoldedCNNError

    if args.n < 1:
        raise FoldedCNNError(f"--n must be >= 1, got {args.n}")
    data = generate_game(args.task, args.split, args.n, args.seed, holdout_fonts=args.holdout_fonts,
                         workers=args.workers)
    path = save_split(args.out, args.split, data.images.numpy(), data.labels.numpy())
    write_meta(args.out, {"task": args.task, "split": args.split, "seed": args.seed, "n": args.n,
                          "holdout_fonts": args.holdout_fonts, "class_names": data.class_names})
    print(f"wrote {len(data)} images {tuple(data.images.shape[1:])} of {args.task} to {path}")
    counts = data.class_counts()
    print(f"classes: {len(counts)}, images per class min {min(counts)} max {max(counts)}, "
          f"other {counts[-1]}")
    if args.folder:
        print(f"ImageFolder: {export_folder(data, args.out / args.split)}")
    if args.preview:
        k = min(len(data), 60)
        names = [data.class_names[y] for y in data.labels[:k].tolist()]
        save_preview([(f"{args.task} ({args.split}, seed {args.seed}): first {k}, captioned with the class",
                       data.images[:k], names)], args.preview, cols=10)
        print(f"preview: {args.preview}")
    return 0


def run_video(args) -> int:
    import torch

    from ..data.noscope import SPLITS, build_video_task, save_video_task
    from ..data.preview import save_preview
    from ..data.vtest import vtest_task
    from ..errors import FoldedCNNError
    from ..tables import format_table

    if args.video == "vtest":
        if args.roi or args.labels or args.split_mode != "contiguous":
            raise FoldedCNNError("the vtest recipe fixes its region, labels and splits: drop --roi, --labels "
                                 "and --split-mode")
        task = vtest_task(args.stride)
    else:
        if args.roi is None:
            raise FoldedCNNError("a video path needs --roi X Y W H")
        task = build_video_task(args.video, tuple(args.roi), labels_csv=args.labels, object_name=args.object,
                                threshold=args.threshold, stride=args.stride, split_mode=args.split_mode,
                                block_frames=args.block_frames, min_overlap=args.min_overlap)
    balance = task.balance()
    print(f"{len(task.labels)} frames of region {task.meta['roi']} (x, y, w, h) at 50x50, "
          f"{task.meta['split_mode']} splits; class balance:")
    rows = [{"split": s, **balance[s], "positive_share": balance[s]["positive"] / max(1, balance[s]["images"])}
            for s in SPLITS]
    print(format_table(rows))
    out = save_video_task(task, args.out, allow_empty_class=args.allow_empty_class)
    print(f"wrote {out}")
    if args.preview:
        images, labels = torch.from_numpy(task.images), torch.from_numpy(task.labels)
        sections = []
        for label, name in ((1, task.class_names[1]), (0, task.class_names[0])):
            idx = torch.nonzero(labels == label).flatten()
            pick = idx[torch.linspace(0, len(idx) - 1, min(20, len(idx))).long()] if len(idx) else idx
            sections.append((f"{name}: {len(idx)} frames (20 spread over the video, captioned with the frame)",
                             images[pick], [f"#{task.frame_index[i]}" for i in pick.tolist()]))
        save_preview(sections, args.preview, cols=10)
        print(f"preview: {args.preview}")
    return 0
