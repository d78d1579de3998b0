"""`foldedcnn run --ray`: the same job on Ray Data, for more videos than one machine can take.

Videos are the dataset's items; a task decodes and crops each video into batches of output
frames (the same batch boundaries as the local job, so frames are folded together the same
way); `map_batches` runs an actor pool, each actor holding one Engine (a GPU each when the
cluster has GPUs); the driver writes the same per-video CSVs and summary.json as the local run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..checkpoint import load_checkpoint
from ..errors import FoldedCNNError
from ._chunk_store import csv_lines, write_csv
from ._frame_labels import header
from ._output_dir import exclusive_output
from .job import (
    JobConfig,
    JobSummary,
    VideoResult,
    count_rows,
    job_region,
    job_thresholds,
    new_summary,
    video_keys,
    write_summary,
)


def _frames_row(key: str, batch=None, error: str = "") -> dict:
    """A Ray row: one batch of a video's output frames as bytes, or (batch None) the video's error."""
    if batch is None:
        return {"key": key, "first": -1, "index": b"", "time_s": b"", "images": b"", "n": 0, "error": error}
    return {"key": key, "first": batch.first, "index": batch.index.astype(np.int64).tobytes(),
            "time_s": batch.time_s.astype(np.float64).tobytes(), "images": batch.images.tobytes(),
            "n": len(batch.index), "error": ""}


def _decode_video(item: dict, roi, size, stride: int, batch: int) -> Iterator[dict]:
    """One Ray row per batch of output frames of a video, yielded as decoded (so inference overlaps decoding
    and a video is never held whole), then a row carrying its error if decoding fails."""
    from .frame_source import FrameSource

    try:
        for b in FrameSource(Path(item["video"]), roi, size, stride=stride, batch=batch):
            yield _frames_row(item["key"], b)
    except FoldedCNNError as exc:
        yield _frames_row(item["key"], error=str(exc))


class _EngineActor:
    """Holds one Engine; turns rows of frames into rows of CSV text."""

    def __init__(self, checkpoint: str, backend: str, device: str | None, batch: int, uncertain,
                 trust_code: bool = False) -> None:
        from ..infer import Engine

        ckpt = load_checkpoint(checkpoint, trust_code=trust_code)
        self.meta = ckpt.meta
        self.engine = Engine(ckpt.model, backend=backend, device=device, max_batch=batch)
        self.uncertain = tuple(uncertain)

    def __call__(self, rows: dict) -> dict:
        from ._frame_labels import rows_for

        c, h, w = self.meta["input_shape"]
        out = []
        for i in range(len(rows["key"])):
            n = int(rows["n"][i])
            if n == 0:
                out.append("")
                continue
            images = np.frombuffer(rows["images"][i], dtype=np.uint8).reshape(n, c, h, w)
            logits = self.engine.predict(images)
            index = np.frombuffer(rows["index"][i], dtype=np.int64)
            time_s = np.frombuffer(rows["time_s"][i], dtype=np.float64)
            out.append(csv_lines(rows_for(index, time_s, logits, self.meta["class_names"], self.uncertain)))
        return {"key": rows["key"], "first": rows["first"], "error": rows["error"],
                "csv": np.array(out, dtype=object)}


def run_job_ray(cfg: JobConfig, address: str | None = None, actors: int | None = None) -> JobSummary:
    """Run `cfg` on Ray Data (a local Ray, or the cluster at `address`); same outputs as run_job, and the
    same lock on the output folder."""
    meta = load_checkpoint(cfg.checkpoint, trust_code=cfg.trust_code).meta  # integrity and trust, before Ray starts
    roi = job_region(cfg, meta)
    cfg, thresholds_from = job_thresholds(cfg, meta)
    with exclusive_output(cfg.out_dir):
        return _run_on_ray(cfg, meta, roi, thresholds_from, address, actors)


def _run_on_ray(cfg: JobConfig, meta: dict, roi, thresholds_from: str, address: str | None,
                actors: int | None) -> JobSummary:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0)
    pool = actors or max(1, int(gpus) if gpus else int(ray.cluster_resources().get("CPU", 1)) // 2)
    _, h, w = meta["input_shape"]
    keys = video_keys(cfg.videos)
    items = [{"video": str(v.resolve()), "key": k} for v, k in zip(cfg.videos, keys, strict=True)]
    t0 = time.perf_counter()
    ds = ray.data.from_items(items).flat_map(
        _decode_video, fn_kwargs={"roi": roi, "size": (h, w), "stride": cfg.stride, "batch": cfg.batch}
    ).map_batches(
        _EngineActor, batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=pool),
        num_gpus=1 if gpus else 0,
        fn_constructor_kwargs={"checkpoint": str(cfg.checkpoint.resolve()), "backend": cfg.backend,
                               "device": "cuda" if gpus else cfg.device, "batch": cfg.batch,
                               "uncertain": cfg.uncertain, "trust_code": cfg.trust_code},
    )
    parts: dict[str, list[tuple[int, str]]] = {k: [] for k in keys}
    errors: dict[str, str] = {}
    for row in ds.iter_rows():
        if row["error"]:
            errors[row["key"]] = row["error"]
        else:
            parts[row["key"]].append((int(row["first"]), row["csv"]))
    wall = time.perf_counter() - t0
    summary = new_summary(cfg, meta, f"{cfg.backend} on ray ({pool} actors)", roi, thresholds_from)
    for video, key in zip(cfg.videos, keys, strict=True):
        if key in errors or not parts[key]:
            error = errors.get(key, f"{video} has no decodable frames")
            summary.videos.append(VideoResult(video=str(video), error=error))
            continue
        final = write_csv(cfg.out_dir / f"{key}.csv", header(meta["class_names"]),
                          "".join(text for _, text in sorted(parts[key])))
        result = VideoResult(video=str(video), csv=str(final))
        result.frames, result.positives, result.uncertain = count_rows(final, meta["class_names"])
        result.end_to_end_fps = round(result.frames / wall, 1)
        summary.videos.append(result)
    write_summary(cfg.out_dir, summary)
    return summary
