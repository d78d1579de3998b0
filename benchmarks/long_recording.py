"""What a long recording costs beyond decoding it: `foldedcnn run` indexes every video (a demux pass) and splits it
into segments before any frame is decoded, each segment's task is pickled to a decoder process, and
`foldedcnn report` decodes a few frames spread over it for its thumbnails.

For each length asked, a small H.264 clip (64x48, one keyframe per --gop frames, no B-frames) is written and its
packets remuxed over and over into one MP4 of that many hours at --fps (benchmarks/video.py's remux), so the
file has the frame count and keyframe layout of a camera's recording without its decoding cost. Then, on that
file: the demux pass alone (data.video.index_video), the job's planning as `run` does it (label._plan.plan_tasks
for --workers decoder processes: probing and indexing the file again, cutting segments near keyframes, making
the tasks), pickling every task as the decoder pool sends it (protocol 5), and data.video.frames_at of --spread
frames evenly spread over the recording (what the report's thumbnails decode), demuxing the file for its
keyframes, and again given the index (as the report is when the run kept it: label._chunk_store.index_kept_for),
and every --stride-th frame of the whole recording with the region cut and resized, as one decoder process of
`foldedcnn run --stride` decodes them (data.video.iter_frames given the index, one thread), and again without
the index, decoding every frame (what a decoder did before commit b3bfec6).

Prints a Markdown table (medians over --repeats, min-max) and writes it to --out with the machine and command.
"""

from __future__ import annotations

import argparse
import pickle
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from video import remux

from foldedcnn.data.video import frames_at, index_video, iter_frames
from foldedcnn.device import device_name
from foldedcnn.label._plan import plan_tasks
from foldedcnn.label.job import JobConfig, job_outputs
from foldedcnn.tables import markdown_table

ROI = (0, 0, 48, 48)


def write_clip(path: Path, frames: int, fps: int, gop: int) -> Path:
    """A 64x48 H.264 clip of `frames` frames (a square moving over a gradient), a keyframe every `gop`."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(gop), "keyint_min": str(gop), "bf": "0",
                          "sc_threshold": "0"}
        base = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
        for i in range(frames):
            rgb = np.repeat(base[:, :, None], 3, axis=2)
            rgb[10:26, i % 48:i % 48 + 16] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    return path


def plan_once(path: Path, out_dir: Path, workers: int) -> tuple[float, list]:
    """Seconds plan_tasks takes for `path` alone (a fresh output folder: nothing labelled yet), and its tasks."""
    cfg = JobConfig(Path("model.safetensors"), [path], out_dir, roi=ROI, batch=128, workers=workers,
                    uncertain=(0.2, 0.8), progress=False)
    meta = {"class_names": ["absent", "present"], "sha256": "0" * 64}
    videos = job_outputs(cfg, meta, [ROI])
    t0 = time.perf_counter()
    tasks = plan_tasks(videos, cfg, (48, 48), workers, lambda info: ("cpu", None))
    return time.perf_counter() - t0, tasks


def fmt(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, nargs="+", default=[1, 24])
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--gop", type=int, default=60, help="frames per keyframe")
    ap.add_argument("--workers", type=int, default=16, help="decoder processes the plan is made for")
    ap.add_argument("--spread", type=int, default=24, help="frames decoded spread over the recording")
    ap.add_argument("--stride", type=int, default=300, help="the stride of the sparse labelling pass")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="Markdown file to write the table to")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "clip.mp4", 600 * args.fps // args.gop * args.gop, args.fps, args.gop)
        for hours in args.hours:
            times = max(1, round(hours * 6))  # the clip is 10 minutes
            long = remux(clip, Path(tmp) / f"long{hours:g}.mp4", times)
            index_s, plan_s, pickle_s, spread_s, kept_s, stride_s, every_s = [], [], [], [], [], [], []
            for r in range(args.repeats):
                t0 = time.perf_counter()
                index = index_video(long)
                index_s.append(time.perf_counter() - t0)
                seconds, tasks = plan_once(long, Path(tmp) / f"out{hours:g}-{r}", args.workers)
                plan_s.append(seconds)
                t0 = time.perf_counter()
                sizes = [len(pickle.dumps(t, protocol=5)) for t in tasks]
                pickle_s.append(time.perf_counter() - t0)
                spread = np.linspace(0, index.frames - 1, args.spread).round().astype(int).tolist()
                for given, seconds in ((None, spread_s), (index, kept_s)):
                    t0 = time.perf_counter()
                    assert len(frames_at(long, spread, given)) == args.spread
                    seconds.append(time.perf_counter() - t0)
                for given, seconds in ((index, stride_s), (None, every_s)):
                    t0 = time.perf_counter()
                    sparse = sum(1 for _ in iter_frames(long, args.stride, roi=ROI, size=(48, 48), index=given,
                                                        threads=1))
                    seconds.append(time.perf_counter() - t0)
                    assert sparse == -(-index.frames // args.stride)
            rows.append({"hours": f"{hours:g}", "frames": f"{index.frames:,}", "keyframes": len(index.keyframes),
                         "index_video s": fmt(index_s), "plan_tasks s (indexes again)": fmt(plan_s),
                         "tasks": len(tasks), "largest task MB": f"{max(sizes) / 1e6:.2f}",
                         "all tasks MB": f"{sum(sizes) / 1e6:.1f}", "pickling all tasks s": fmt(pickle_s, 3),
                         f"frames_at {args.spread} spread s": fmt(spread_s),
                         "same, index given s": fmt(kept_s),
                         f"every {args.stride}th frame, as a decoder of --stride {args.stride} s": fmt(stride_s),
                         "same, decoding every frame (no index) s": fmt(every_s)})
    table = markdown_table(rows)
    machine = f"{device_name('cpu')}, Python {platform.python_version()}, PyAV {av.__version__}"
    text = (f"# A long recording ({args.fps} frames/s, a keyframe every {args.gop}, planned for "
            f"{args.workers} decoder processes)\n\nMachine: {machine}. Median (min-max) of {args.repeats}.\n\n"
            f"{table}\n\nCommand: `python {' '.join(sys.argv)}`\n")
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
