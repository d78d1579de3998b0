"""`foldedcnn frames`: the frames a `foldedcnn run` flagged, as images for the reference model."""

from __future__ import annotations


def register(sub) -> None:
    from ..label.frames_export import CROPS, FORMATS, WHICH

    p = sub.add_parser("frames", help="write the frames a `run` flagged (uncertain: for the reference model) as "
                                      "images, with an index CSV")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the --out folder of `foldedcnn run` (holds summary.json)")
    p.add_argument("--out", required=True, help="folder for OUT/KEY/FRAME.jpg and OUT/frames.csv")
    p.add_argument("--which", choices=WHICH, default="uncertain",
                   help="uncertain (default): the frames the cascade sends to the reference model; certain: the "
                        "others (a multi-class model's labelled frames); positive: the certain non-first-class "
                        "frames; all")
    p.add_argument("--crop", choices=CROPS, default="region",
                   help="region (default): the region the run labelled, at the video's resolution; frame: whole")
    p.add_argument("--format", choices=FORMATS, default="jpg", help="jpg (quality 95, default) or png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..label.frames_export import export_frames

    result = export_frames(args.run_dir, args.out, which=args.which, crop=args.crop, image_format=args.format,
                           progress=not args.no_progress)
    for failed in result.failed:
        print(f"skipped {failed}")
    for left_out in result.skipped:
        print(f"skipped {left_out}")
    print(f"wrote {result.written} new of {result.images} {args.which} frames of {result.outputs} outputs to "
          f"{result.out}; index {result.index}")
    return 1 if result.failed else 0
