"""What damaged data costs the video job, and what it gets: `foldedcnn run` (label.run_job) over vtest.avi (MS-MPEG-4
in AVI) remuxed --long times, and the same frames as H.264 with 2 B-frames in MP4 (a keyframe every 250 frames),
each intact and with --share of its packets damaged: chosen at random (--seed), the last three quarters of each
overwritten with zeros, as a bad sector or a lost chunk of a network stream leaves a recording.

Each file is labelled --repeats times, the files interleaved, by noscope-coral f = 4 on --device with --workers
decoder processes, once per --decoders (gpu: NVDEC, on a GPU machine with PyNvVideoCodec; MS-MPEG-4 goes to the
CPU, which the decoder column says). Per file and decoder: the job's outcome (ok, or the video's error), its
rows and how many of them did not decode, end-to-end frames/s and the decoder processes' CPU per row (median,
min-max), and the damaged file's frames/s over the intact one's. Prints a Markdown table and writes it to --out
with the machine and command.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
import torch
from _published import job_report, publish
from video import remux, transcode_h264

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.data import VTEST_ROI, vtest_path
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine
from foldedcnn.label import JobConfig, run_job
from foldedcnn.label.job import core_for_decoding


def damage(src: Path, dst: Path, share: float, seed: int) -> tuple[Path, int]:
    """A copy of `src` with `share` of its video packets (at least one) damaged, and how many."""
    with av.open(str(src)) as c:
        places = [(p.pos, p.size) for p in c.demux(video=0) if p.size and p.pos is not None and p.pos >= 0]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(places), size=max(1, round(share * len(places))), replace=False)
    data = bytearray(src.read_bytes())
    for k in chosen.tolist():
        pos, size = places[k]
        data[pos + size // 4:pos + size] = bytes(size - size // 4)
    dst.write_bytes(bytes(data))
    return dst, len(chosen)


def label(engine: Engine, ckpt: Path, video: Path, workers: int, batch: int, decoder: str = "cpu") -> dict:
    """One job over `video` alone with `decoder`: its frames/s, rows, undecodable rows, decoder CPU per row, error
    and the decoder it ran on."""
    with tempfile.TemporaryDirectory() as out:
        cfg = JobConfig(ckpt, [video], Path(out), roi=VTEST_ROI, batch=batch, chunk_frames=4 * batch,
                        device=str(engine.device), workers=workers, decoder=decoder, progress=False)
        with core_for_decoding():
            summary = run_job(cfg, engine)
    (result,) = summary.videos
    cpu_s = summary.timing.get("decoders_cpu_s")
    return {"fps": summary.frames_per_s, "rows": result.frames, "error": result.error, "decoder": result.decoder,
            "undecodable": getattr(result, "undecodable", None),  # absent from the code before 76512b8
            "cpu_us": 1e6 * cpu_s / result.frames if cpu_s and result.frames else None}


def spread(values: list[float | None]) -> str:
    """Median (min-max) of the values known (a failed job has no frames/s)."""
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):,.0f} ({min(known):,.0f}-{max(known):,.0f})" if known else "n/a"


def ratio(values: list[float | None], intact: list[float | None]) -> str:
    """The median of `values` over that of `intact`, both known."""
    a, b = ([v for v in x if v is not None] for x in (values, intact))
    return f"{statistics.median(a) / statistics.median(b):.2f}" if a and b else "n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--long", type=int, default=5, help="vtest.avi repeated this often")
    ap.add_argument("--share", type=float, default=0.002, help="share of the packets damaged")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default=None, help="the engine's (default: the GPU if there is one)")
    ap.add_argument("--backend", default="auto", help="the engine's (torch: no compile time on a GPU)")
    ap.add_argument("--decoders", nargs="+", default=["cpu"], choices=["cpu", "gpu"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="folder for damaged_recording.md")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        avi = remux(vtest_path(), tmp / "vtest.avi", args.long)
        mp4 = transcode_h264(avi, tmp / "vtest-h264.mp4", b_frames=2)
        files: dict[str, tuple[Path, int]] = {}
        for name, path in (("MS-MPEG-4 AVI", avi), ("H.264 B-frames MP4", mp4)):
            files[f"{name}, intact"] = path, 0
            files[f"{name}, damaged"] = damage(path, tmp / f"damaged{path.suffix}", args.share, args.seed)
        torch.manual_seed(0)
        ckpt = save_checkpoint(tmp / "coral.safetensors", FoldedModel.from_zoo("noscope-coral", 4),
                               class_names=["absent", "present"])
        with core_for_decoding():
            engine = Engine(ckpt, backend=args.backend, device=args.device, max_batch=args.batch, pad_to_max=True)
        label(engine, ckpt, avi, args.workers, args.batch)  # untimed: the decoders' fork server starts
        runs: dict[tuple[str, str], list[dict]] = {(name, d): [] for d in args.decoders for name in files}
        for _ in range(args.repeats):
            for name, decoder in runs:
                runs[name, decoder].append(label(engine, ckpt, files[name][0], args.workers, args.batch, decoder))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for name, decoder in runs:
        last = runs[name, decoder][-1]
        intact = runs[name.replace("damaged", "intact"), decoder]
        fps = [r["fps"] for r in runs[name, decoder]]
        rows.append({"file": name, "packets damaged": f"{files[name][1]:,}", "decoder": last["decoder"] or decoder,
                     "outcome": "ok" if last["error"] is None else f"failed: {last['error'][:120]}",
                     "rows": f"{last['rows']:,}",
                     "undecodable": "n/a" if last["undecodable"] is None else f"{last['undecodable']:,}",
                     "end-to-end f/s": spread(fps),
                     "decoders CPU us/row": spread([r["cpu_us"] for r in runs[name, decoder]]),
                     "f/s / intact": ratio(fps, [r["fps"] for r in intact])})
    text = job_report(
        "The video job over damaged recordings", engine,
        f"vtest.avi remuxed {args.long}x ({rows[0]['rows']} frames) and as H.264 with 2 B-frames in MP4; "
        f"{args.share:.1%} of the packets damaged (seed {args.seed}); noscope-coral f = 4, {args.workers} decoder "
        f"processes, batch {args.batch}; median (min-max) of {args.repeats} interleaved runs.",
        rows, "damaged_recording.py")
    publish(text, args.out, "damaged_recording.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
