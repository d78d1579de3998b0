"""What a rerun of `foldedcnn run` over videos it labelled before costs before it finds them done (a cron job over a
camera's folder, with --min-age): opening each video (FFmpeg decodes an H.264 video's first frames to probe it),
its content fingerprint (2 MiB read) and reading its finished CSV back for its counts, unless its output kept
what they gave (label._kept_reads, used while the file read is unchanged).

Writes one clip (320x240 H.264 of random pixels, --frames frames: a camera's bytes per frame, not its size) and
copies it --videos times (as modified a minute before), labels them once with the job (an untrained noscope-coral
f = 4 checkpoint: only the planning is timed), then plans the rerun --repeats times each way, alternating: with
what was kept, and with it deleted (as every rerun read the videos and CSVs before it was kept). The files are in
the page cache: this times the probing, hashing and counting, not a disk. Prints a Markdown table of
summary.json's plan_s (median, min-max) and writes it to --out with the machine and the command.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.device import device_name
from foldedcnn.folded import FoldedModel
from foldedcnn.label import JobConfig, run_job
from foldedcnn.label._kept_reads import COUNTS_FILE, PROBE_FILE
from foldedcnn.tables import markdown_table

ROI = (8, 8, 64, 48)


def write_noise_clip(path: Path, frames: int) -> Path:
    """A 320x240 H.264 clip of random pixels (crf 10), a keyframe every 50 frames."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"crf": "10", "g": "50", "preset": "ultrafast"}
        for _ in range(frames):
            rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    return path


def plan_s(cfg: JobConfig) -> float:
    """The rerun's planning time (summary.json's timing), every output found done."""
    summary = run_job(cfg)
    if summary.failed or summary.frames_per_s:
        raise RuntimeError("the rerun failed or labelled frames: it is not a rerun of a finished job")
    return summary.timing["plan_s"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=100)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, default=2, help="processes that read the videos (the job's default: cores)")
    p.add_argument("--out", type=Path, default=None, help="write the table here (Markdown)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rerun-plan-") as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        ckpt = save_checkpoint(tmp / "f4.safetensors", FoldedModel.from_zoo("noscope-coral", 4).eval(),
                               class_names=["absent", "present"], extra={"roi": list(ROI)})
        clip = write_noise_clip(tmp / "clip.mp4", args.frames)
        (tmp / "cams").mkdir()
        videos = [Path(shutil.copy(clip, tmp / "cams" / f"cam{i:05d}.mp4")) for i in range(args.videos)]
        for video in videos:  # recorded a minute ago: what was read of a file written just before is not kept
            os.utime(video, (time.time() - 60,) * 2)
        cfg = JobConfig(ckpt, videos, tmp / "out", backend="torch", device="cpu", workers=args.workers,
                        progress=False)
        if run_job(cfg).failed:
            raise RuntimeError("labelling the clips failed")
        times: dict[str, list[float]] = {"kept": [], "read": []}
        for _ in range(args.repeats):
            times["kept"].append(plan_s(cfg))  # the run before kept them (the first, or the last "read")
            for name in (PROBE_FILE, COUNTS_FILE):
                for kept in (tmp / "out" / ".parts").glob(f"*/{name}"):
                    kept.unlink()
            times["read"].append(plan_s(cfg))
        size_mb = clip.stat().st_size / 1e6
    rows = [{"planning": name, "plan_s": f"{statistics.median(t):.3f} ({min(t):.3f}-{max(t):.3f})",
             "ms per video": f"{statistics.median(t) / args.videos * 1e3:.2f}"}
            for name, t in (("probe, fingerprint and counts kept (now)", times["kept"]),
                            ("each video and CSV read again (before)", times["read"]))]
    ratio = statistics.median(times["read"]) / statistics.median(times["kept"])
    table = markdown_table(rows)
    command = "python benchmarks/rerun_plan.py " + " ".join(sys.argv[1:])
    text = (f"# Planning a rerun over {args.videos} finished videos ({size_mb:.1f} MB H.264 clips, {args.frames} "
            f"frames, 320x240)\n\nMachine: {device_name('cpu')}, Python {platform.python_version()}, PyAV "
            f"{av.__version__}; {args.workers} reading processes; median (min-max) of {args.repeats} alternating "
            f"repeats, files in the page cache.\n\n{table}\n\nRead again / kept: {ratio:.1f}x the planning time.\n\n"
            f"Command: `{command}`\n")
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
