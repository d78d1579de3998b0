"""What the video job makes of recordings whose container is damaged, not only their frames' data: vtest.avi (--long
times over; MS-MPEG-4 in AVI), and its frames as H.264 with 2 B-frames in Matroska and in MPEG-TS and as MPEG-2 with 2
B-frames in MPEG-PS, each intact, with --lose of its bytes cut out of the middle (a copy that lost a chunk; MPEG-TS
cut at its 188-byte packets, as a network stream loses a stretch of them), and with --bursts bursts of 16 to 400
random bytes written over it at random places (a bad disk; --seeds different files).

Each file is labelled by noscope-coral f = 4 with 1 and with --workers decoder processes. Per file: the outcome
(ok, truncated or failed, as summary.json says), its CSV's rows, the rows that did not decode (`undecodable`), the
frames the file no longer holds whose time its rows jump over (`missing_frames`), rows + missing against the
intact file's frames, and whether 1 and --workers decoders wrote the same CSV. Prints a Markdown table and writes it
to --out with the machine and command. This is a check of outcomes, not a timing.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from _published import job_report, publish
from video import remux, transcode

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.data import VTEST_ROI, vtest_path
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine
from foldedcnn.label import JobConfig, run_job
from foldedcnn.label.job import core_for_decoding

# (name, file suffix, codec, encoder options): vtest.avi as it is (codec None), and encoded with B-frames and a
# keyframe every 25 frames
FORMATS = (("MS-MPEG-4 AVI", "avi", None, {}),
           ("H.264 MKV", "mkv", "libx264", {"preset": "veryfast", "g": "25", "bf": "2"}),
           ("H.264 MPEG-TS", "ts", "libx264", {"preset": "veryfast", "g": "25", "bf": "2"}),
           ("MPEG-2 MPEG-PS", "mpg", "mpeg2video", {"g": "25", "bf": "2", "b": "2M"}))
TS_PACKET = 188


def cut_out(src: Path, dst: Path, share: float) -> Path:
    """A copy of `src` without `share` of its bytes from its middle on (MPEG-TS: whole 188-byte packets)."""
    data = src.read_bytes()
    unit = TS_PACKET if src.suffix == ".ts" else 1
    first, length = len(data) // 2 // unit * unit, int(len(data) * share) // unit * unit
    dst.write_bytes(data[:first] + data[first + length:])
    return dst


def bursts(src: Path, dst: Path, count: int, seed: int) -> Path:
    """A copy of `src` with `count` bursts of 16 to 400 random bytes written over it at random places."""
    rng = random.Random(seed)
    data = bytearray(src.read_bytes())
    for _ in range(count):
        n = rng.randint(16, 400)
        at = rng.randrange(len(data) - n)
        data[at:at + n] = rng.randbytes(n)
    dst.write_bytes(bytes(data))
    return dst


def label(engine: Engine, ckpt: Path, video: Path, workers: int, batch: int, out: Path) -> tuple[dict, str | None]:
    """One job over `video` alone into `out`: its summary.json line (VideoResult's fields) and its CSV's text
    (None without one)."""
    cfg = JobConfig(ckpt, [video], out, roi=VTEST_ROI, batch=batch, chunk_frames=4 * batch, device=str(engine.device),
                    workers=workers, progress=False)
    with core_for_decoding():
        (result,) = run_job(cfg, engine).videos
    csv = Path(result.csv)
    return vars(result), csv.read_text() if csv.exists() else None


def outcome(result: dict) -> str:
    if result["error"] is None:
        return "ok"
    return result["error"][:100] if result["truncated"] else f"failed: {result['error'][:100]}"  # "truncated: ..."


def agreement(one: dict, csv_one: str | None, many: dict, csv_many: str | None) -> str:
    """Whether two runs over one file (1 and more decoders) wrote the same CSV, or how they differ: in the frames
    and times of their rows, or only in some rows' scores (a group of pictures after damage that a decoder conceals
    otherwise where a segment starts on it: docs/video-job.md, "Damaged recordings")."""
    if csv_one == csv_many and outcome(one) == outcome(many):
        return "same CSV"
    a, b = ((csv or "").splitlines() for csv in (csv_one, csv_many))
    if [r.split(",", 2)[:2] for r in a] != [r.split(",", 2)[:2] for r in b] or outcome(one) != outcome(many):
        return f"differ: {many['frames']:,} rows, {outcome(many)}"
    return f"same frames; scores differ in {sum(x != y for x, y in zip(a, b, strict=True)):,} rows"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--long", type=int, default=1, help="vtest.avi repeated this often")
    ap.add_argument("--lose", type=float, default=0.05, help="share of the bytes cut out of the middle")
    ap.add_argument("--bursts", type=int, default=30, help="random byte bursts per damaged file")
    ap.add_argument("--seeds", type=int, default=3, help="files damaged by bursts, per format")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", type=Path, default=None, help="folder for container_damage.md")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    rows = []
    try:
        avi = remux(vtest_path(), tmp / "vtest.avi", args.long)
        torch.manual_seed(0)
        ckpt = save_checkpoint(tmp / "coral.safetensors", FoldedModel.from_zoo("noscope-coral", 4),
                               class_names=["absent", "present"])
        with core_for_decoding():
            engine = Engine(ckpt, device="cpu", max_batch=args.batch, pad_to_max=True)
        for name, suffix, codec, options in FORMATS:
            intact = avi if codec is None else transcode(avi, tmp / f"intact.{suffix}", codec, options)
            files = {"intact": intact, f"{args.lose:.0%} of its bytes cut out":
                     cut_out(intact, tmp / f"cut.{suffix}", args.lose)}
            for seed in range(args.seeds):
                files[f"{args.bursts} byte bursts, seed {seed}"] = bursts(intact, tmp / f"bursts{seed}.{suffix}",
                                                                          args.bursts, seed)
            frames = None
            for damage, path in files.items():
                one, csv_one = label(engine, ckpt, path, 1, args.batch, tmp / f"{path.name}-1")
                many, csv_many = label(engine, ckpt, path, args.workers, args.batch, tmp / f"{path.name}-n")
                frames = one["frames"] if frames is None else frames  # the intact file's, first
                missing = one.get("missing_frames")  # absent from the code before a23e8e1
                rows.append({"file": f"{name}, {damage}", "outcome": outcome(one), "rows": f"{one['frames']:,}",
                             "undecodable": f"{one['undecodable']:,}",
                             "missing": "n/a" if missing is None else f"{missing:,}",
                             "rows + missing": f"{one['frames'] + (missing or 0):,} of {frames:,}",
                             f"1 = {args.workers} decoders": agreement(one, csv_one, many, csv_many)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = job_report(
        "The video job over recordings whose container is damaged", engine,
        f"vtest.avi remuxed {args.long}x, and encoded with 2 B-frames (a keyframe every 25 frames); each file labelled "
        f"by noscope-coral f = 4 with 1 and {args.workers} decoder processes, batch {args.batch}. Outcome, rows, "
        "undecodable and missing are the 1-decoder run's (summary.json's `undecodable` and `missing_frames`).",
        rows, "container_damage.py")
    publish(text, args.out, "container_damage.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
