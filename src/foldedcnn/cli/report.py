"""`foldedcnn report`: one self-contained HTML page showing the labels of a `foldedcnn run`."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("report", help="one HTML page with score timelines and thumbnails of a `run`'s labels")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the --out folder of `foldedcnn run` (holds summary.json)")
    p.add_argument("--out", default=None, help="HTML file to write (default RUN_DIR/report.html)")
    p.add_argument("--thumbnails", type=int, default=12,
                   help="at most this many positive and this many uncertain frames per video (default 12)")
    p.add_argument("--videos", type=int, default=50,
                   help="show every failed or skipped video and this many others, those with the most uncertain frames "
                        "(default 50; summary.json lists every one)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..label import write_report

    report = write_report(args.run_dir, args.out, thumbnails=args.thumbnails, videos=args.videos)
    shown = "" if report.shown == report.videos else f", {report.shown} shown"
    print(f"wrote {report.path} (videos: {report.videos}{shown}, embedded images: {report.images})")
    return 0
