"""`foldedcnn run --ray`: the same job on Ray Data, for more videos than one machine can take.

The items are the same segments as the local job's (_plan.plan_tasks: batch-aligned rows of a video,
decoding from the keyframe before them, only the missing chunks of a resumed run); a Ray task decodes
each segment into batches (frame_source.SegmentDecoder), `map_batches` runs an actor pool, each actor
holding one Engine (a GPU each when the cluster has GPUs) and turning a batch into CSV rows, and the
driver streams those rows into each video's chunk store as they come, in any order: it holds only
chunks not yet whole, writes the same CSVs and summary.json as the local run, and a killed `--ray`
run resumes like a local one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from ..checkpoint import load_checkpoint
from ..errors import FoldedCNNError
from ._output_dir import exclusive_output
from ._plan import plan_tasks
from .frame_source import region_images, regions_in
from .job import (
    JobConfig,
    JobSummary,
    frames_labelled,
    job_outputs,
    job_regions,
    job_thresholds,
    new_summary,
    start_clock,
    with_default_batch,
    write_summary,
)


def _decode_segment(item: dict) -> Iterator[dict]:
    """One Ray row per batch of a segment, yielded as decoded (inference overlaps decoding and a video is
    never held whole), then one row saying where the segment ended, or why it failed."""
    from .frame_source import SegmentDecoder

    task = item["task"]
    decoder = SegmentDecoder(task.path, task.segment, task.rois, task.size, task.stride, task.batch, task.index)
    outputs, error, t0 = np.array(task.outputs, np.int64).tobytes(), "", time.perf_counter()
    try:
        for b in decoder:
            yield {"outputs": outputs, "first": b.first, "n": len(b.index), "index": b.index.astype(np.int64).tobytes(),
                   "time_s": b.time_s.astype(np.float64).tobytes(), "images": b.images.tobytes(),
                   "decoded": b"" if b.decoded is None else b.decoded.tobytes(), "end": -1,
                   "reached_end": False, "error": "", "decode_s": 0.0}
    except FoldedCNNError as exc:
        error = str(exc)
    yield {"outputs": outputs, "first": -1, "n": 0, "index": b"", "time_s": b"", "images": b"", "decoded": b"",
           "end": decoder.end_row, "reached_end": decoder.reached_end, "error": error,
           "decode_s": time.perf_counter() - t0}


class _EngineActor:
    """Holds one Engine; turns rows of frames (R regions each) into R lists of CSV rows (other rows pass through)."""

    def __init__(self, checkpoint: str, backend: str, device: str | None, batch: int, uncertain,
                 trust_code: bool = False) -> None:
        from ..infer import Engine

        ckpt = load_checkpoint(checkpoint, trust_code=trust_code)
        self.meta = ckpt.meta
        self.engine = Engine(ckpt.model, backend=backend, device=device, max_batch=batch, pad_to_max=True)
        self.uncertain = tuple(uncertain)

    def __call__(self, rows: dict) -> dict:
        from ._frame_labels import csv_lines_for

        _, h, w = self.meta["input_shape"]
        out = []
        for i in range(len(rows["outputs"])):
            n = int(rows["n"][i])
            if n == 0:
                out.append(None)
                continue
            images = np.frombuffer(rows["images"][i], dtype=np.uint8).reshape(n, -1, h, w)  # (n, 3R, h, w)
            index = np.frombuffer(rows["index"][i], dtype=np.int64)
            time_s = np.frombuffer(rows["time_s"][i], dtype=np.float64)
            decoded = np.frombuffer(rows["decoded"][i], dtype=bool) if len(rows["decoded"][i]) else None
            out.append([csv_lines_for(index, time_s, self.engine.predict(region_images(images, r)),
                                      self.meta["class_names"], self.uncertain, decoded)
                        for r in range(regions_in(images))])
        column = np.empty(len(out), dtype=object)  # per item one list of CSV lines per region, never a 2-D array
        for i, r in enumerate(out):
            column[i] = r
        keep = ("outputs", "first", "end", "reached_end", "error", "decode_s")
        backend = np.full(len(out), self.engine.backend_name, dtype=object)  # what "auto" chose on this actor
        return {**{k: rows[k] for k in keep}, "rows": column, "backend": backend}


def run_job_ray(cfg: JobConfig, address: str | None = None, actors: int | None = None) -> JobSummary:
    """Run `cfg` on Ray Data (a local Ray, or the cluster at `address`); same outputs as run_job, and the
    same lock on the output folder."""
    meta = load_checkpoint(cfg.checkpoint, trust_code=cfg.trust_code).meta  # integrity and trust, before Ray starts
    regions = job_regions(cfg, meta)
    cfg, thresholds_from = job_thresholds(cfg, meta)
    with exclusive_output(cfg.out_dir):
        return _run_on_ray(cfg, meta, regions, thresholds_from, address, actors)


def _run_on_ray(cfg: JobConfig, meta: dict, regions, thresholds_from: str, address: str | None,
                actors: int | None) -> JobSummary:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    cfg = with_default_batch(cfg, gpus > 0)
    pool = actors or max(1, int(gpus) if gpus else cpus // 2)
    _, h, w = meta["input_shape"]
    videos = job_outputs(cfg, meta, regions)
    tasks = plan_tasks(videos, cfg, (h, w), max(1, cpus - pool), lambda info: ("cpu", None))  # PyAV in tasks
    t0 = start_clock(videos)  # rows reach the driver in bursts: no later start would be honest
    backends: set[str] = set()
    if tasks:
        ds = ray.data.from_items([{"task": t} for t in tasks], override_num_blocks=len(tasks)).flat_map(
            _decode_segment
        ).map_batches(
            _EngineActor, batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=pool),
            num_gpus=1 if gpus else 0,
            fn_constructor_kwargs={"checkpoint": str(cfg.checkpoint.resolve()), "backend": cfg.backend,
                                   "device": "cuda" if gpus else cfg.device, "batch": cfg.batch,
                                   "uncertain": cfg.uncertain, "trust_code": cfg.trust_code},
        )
        for row in ds.iter_rows():  # rows and segment ends, in any order
            outputs = [videos[n] for n in np.frombuffer(row["outputs"], np.int64)]  # a video's regions
            backends.add(row["backend"])
            if row["rows"] is not None:
                for video, rows in zip(outputs, row["rows"], strict=True):
                    if video.result.error is None:
                        video.add(int(row["first"]), rows)
            else:
                for video in outputs:
                    video.segment_finished(int(row["end"]), bool(row["reached_end"]), row["error"] or None,
                                           float(row["decode_s"]))
            for video in outputs:
                video.settle()
    for video in videos:
        video.settle(last_call=True)
    used = "/".join(sorted(backends)) or cfg.backend
    summary = new_summary(cfg, meta, f"{used} on ray ({pool} actors)", regions, thresholds_from)
    summary.videos = [v.result for v in videos]
    labelled = frames_labelled(videos)
    summary.frames_per_s = round(labelled / (time.perf_counter() - t0), 1) if labelled else None
    write_summary(cfg.out_dir, summary)
    return summary
