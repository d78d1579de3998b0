"""Video job speed: decode-only, model-only and end-to-end frames/s on vtest.avi.

For the original (f = 1) and the folded (f = 4) noscope-coral, interleaved over repeats:
  decode-only  the decoder thread alone (decode, crop the region, resize to 50x50)
  model-only   Engine.predict over frames already decoded into memory
  end-to-end   the `foldedcnn run` path (decoder thread overlapped with the engine, CSV chunks)
Goal: end-to-end >= 90% of min(decode-only, model-only). Checkpoints have random weights unless
given (speed does not depend on the weights). Writes video.json and video.md to --out.

    python benchmarks/video.py --out benchmarks/results/cpu-2core
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.data import VTEST_ROI, vtest_path
from foldedcnn.device import device_name
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine
from foldedcnn.label.frame_source import FrameSource
from foldedcnn.label.job import JobConfig, core_for_decoding, label_video
from foldedcnn.tables import markdown_table


def decode_only(video: Path, batch: int) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    batches = [b.images for b in FrameSource(video, VTEST_ROI, (50, 50), batch=batch)]
    return sum(len(b) for b in batches) / (time.perf_counter() - t0), np.concatenate(batches)


def model_only(engine: Engine, frames: np.ndarray, batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(frames), batch):
        engine.predict(frames[i:i + batch])
    return len(frames) / (time.perf_counter() - t0)


def end_to_end(engine: Engine, video: Path, ckpt: Path, batch: int, meta: dict) -> float:
    with tempfile.TemporaryDirectory() as out:
        cfg = JobConfig(ckpt, [video], Path(out), roi=VTEST_ROI, batch=batch, chunk_frames=4 * batch,
                        progress=False)
        return label_video(engine, video, video.stem, cfg, meta, VTEST_ROI).end_to_end_fps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=None, help="default: vtest.avi")
    ap.add_argument("--folds", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu-2core"))
    args = ap.parse_args()
    video = args.video or vtest_path()
    from foldedcnn.checkpoint import read_metadata

    tmp = Path(tempfile.mkdtemp())
    engines, job_engines, metas, ckpts = {}, {}, {}, {}
    for f in args.folds:
        torch.manual_seed(0)
        ckpts[f] = save_checkpoint(tmp / f"coral-f{f}.safetensors", FoldedModel.from_zoo("noscope-coral", f),
                                   class_names=["absent", "present"])
        metas[f] = read_metadata(ckpts[f])
        engines[f] = Engine(ckpts[f], backend=args.backend, max_batch=args.batch)
        with core_for_decoding():
            job_engines[f] = Engine(ckpts[f], backend=engines[f].backend_name, max_batch=args.batch)
    _, frames = decode_only(video, args.batch)  # warm the file cache
    samples: dict[tuple[int, str], list[float]] = {}
    for _ in range(args.repeats):
        for f in args.folds:
            samples.setdefault((f, "decode-only"), []).append(decode_only(video, args.batch)[0])
            samples.setdefault((f, "model-only"), []).append(model_only(engines[f], frames, args.batch))
            with core_for_decoding():
                samples.setdefault((f, "end-to-end"), []).append(
                    end_to_end(job_engines[f], video, ckpts[f], args.batch, metas[f]))
    rows = []
    for f in args.folds:
        med = {m: statistics.median(samples[(f, m)]) for m in ("decode-only", "model-only", "end-to-end")}
        bound = min(med["decode-only"], med["model-only"])
        row = {"model": "noscope-coral", "fold": f, "backend": engines[f].backend_name}
        for m in ("decode-only", "model-only", "end-to-end"):
            row[f"{m} frames/s"] = f"{med[m]:,.0f} ({min(samples[(f, m)]):,.0f}-{max(samples[(f, m)]):,.0f})"
        row["end-to-end / min"] = round(med["end-to-end"] / bound, 3)
        row["goal >= 0.9"] = "met" if med["end-to-end"] >= 0.9 * bound else "missed"
        rows.append(row)
    machine = {"device": device_name("cpu"), "python": platform.python_version(), "torch": torch.__version__,
               "threads": torch.get_num_threads()}
    command = "python benchmarks/video.py " + " ".join(sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "video.json").write_text(json.dumps({
        "video": str(video.name), "frames": int(len(frames)), "batch": args.batch, "repeats": args.repeats,
        "machine": machine, "command": command, "rows": rows,
        "samples": {f"f{f}/{m}": v for (f, m), v in samples.items()},
    }, indent=2))
    table = markdown_table(rows)
    (args.out / "video.md").write_text(
        f"# Video job speed on {video.name} ({len(frames)} frames, region {VTEST_ROI} -> 50x50)\n\n"
        f"Machine: {machine['device']}, torch {machine['torch']}, {machine['threads']} threads. "
        f"Batch {args.batch}; median (min-max) of {args.repeats} interleaved repeats.\n\n{table}\n\n"
        f"Command: `{command}`\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
