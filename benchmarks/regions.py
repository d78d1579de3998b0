"""Several regions, one decode: `foldedcnn run` with R regions (--roi given R times) against R jobs of one region.

On vtest.avi (795 frames, 768x576) with noscope-coral f = 4, for R = 1, 2, 4 regions of 140x140, interleaved over
--repeats: the wall time of one job labelling all R regions of every frame, and the summed wall times of R jobs
labelling one region each (what labelling R regions cost before). Reports the median (min-max) of video frames/s,
region images/s, and the ratio of the two times per repeat. Writes regions.md to --out.

    python benchmarks/regions.py --out benchmarks/results/cpu-2core
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

import torch

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.data import VTEST_ROI, vtest_path
from foldedcnn.device import device_name
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine
from foldedcnn.label import JobConfig, run_job
from foldedcnn.label.job import core_for_decoding, default_batch
from foldedcnn.tables import markdown_table

REGIONS = [VTEST_ROI, (100, 300, 140, 140), (300, 100, 140, 140), (600, 400, 140, 140)]


def job_wall(engine: Engine, ckpt: Path, video: Path, regions: list, batch: int) -> float:
    """Wall seconds of one job labelling `regions` of every frame of `video` (into a scratch folder)."""
    with tempfile.TemporaryDirectory() as out:
        cfg = JobConfig(ckpt, [video], Path(out), roi=regions, batch=batch, chunk_frames=4 * batch, progress=False)
        summary = run_job(cfg, engine)
    assert not summary.failed, summary.failed
    return summary.timing["wall_s"]


def fmt(values: list[float], digits: int = 0) -> str:
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regions", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu-2core"))
    args = ap.parse_args()
    batch = default_batch(gpu=False)
    tmp = Path(tempfile.mkdtemp())
    try:
        video = Path(shutil.copy(vtest_path(), tmp))
        torch.manual_seed(0)
        ckpt = save_checkpoint(tmp / "coral.safetensors", FoldedModel.from_zoo("noscope-coral", 4),
                               class_names=["absent", "present"])
        with core_for_decoding():  # the job's engine, as run_job would build it
            engine = Engine(ckpt, max_batch=batch, pad_to_max=True)
        job_wall(engine, ckpt, video, REGIONS[:1], batch)  # warm: file cache, engine, decoder server
        together: dict[int, list[float]] = {r: [] for r in args.regions}
        apart: dict[int, list[float]] = {r: [] for r in args.regions}
        for _ in range(args.repeats):
            for r in args.regions:
                together[r].append(job_wall(engine, ckpt, video, REGIONS[:r], batch))
                apart[r].append(sum(job_wall(engine, ckpt, video, [roi], batch) for roi in REGIONS[:r]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    frames = 795
    rows = [{"regions": r,
             "one job: video frames/s": fmt([frames / t for t in together[r]]),
             "one job: region images/s": fmt([r * frames / t for t in together[r]]),
             "R jobs of one region: region images/s": fmt([r * frames / t for t in apart[r]]),
             "time: one job / R jobs": fmt([a / b for a, b in zip(together[r], apart[r], strict=True)], 2)}
            for r in args.regions]
    table = markdown_table(rows)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "regions.md").write_text(
        f"# Several regions, one decode (vtest.avi, noscope-coral f = 4, {engine.backend_name})\n\n"
        f"Machine: {device_name('cpu')}, {os.cpu_count()} cores, torch {torch.__version__}; batch {batch}, "
        f"{args.repeats} interleaved repeats, median (min-max). Regions: {REGIONS[:max(args.regions)]}.\n\n"
        f"{table}\n\nCommand: `python benchmarks/regions.py --out {args.out}`\n")


if __name__ == "__main__":
    main()
