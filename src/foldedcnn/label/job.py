"""`foldedcnn run`: label every frame of many videos with a (folded) CNN checkpoint.

Per video: decode in a background thread, crop the region and resize to the checkpoint's input,
batch and fold through the Engine, write one CSV (see _frame_labels) in crash-safe chunks
(_chunk_store), and report frames, positives, uncertain frames and decode / model / end-to-end
frames per second in summary.json. A failing video is recorded and the others go on; a video
that decodes to fewer frames than its container declares is `truncated` (both counts in the
summary) and counts as failed. One job per output folder (_output_dir: a lock); the chunks and
finished CSVs carry the job's fingerprint, so a rerun with other settings never mixes results.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm import tqdm

from ..checkpoint import load_checkpoint
from ..errors import FoldedCNNError, OutputWriteError
from ..fsio import atomic_write_text
from ._chunk_store import ChunkStore, writing
from ._frame_labels import header, rows_for
from ._output_dir import exclusive_output
from .calibration import stored_calibration
from .frame_source import DECODER, FrameSource

DEFAULT_UNCERTAIN = (0.2, 0.8)


@dataclass
class JobConfig:
    """What `foldedcnn run` was asked to do."""

    checkpoint: Path
    videos: list[Path]
    out_dir: Path
    roi: tuple[int, int, int, int] | None = None  # x, y, w, h; default: the checkpoint's
    stride: int = 1
    uncertain: tuple[float, float] | None = None  # default: the checkpoint's calibration, else DEFAULT_UNCERTAIN
    backend: str = "auto"
    device: str | None = None
    batch: int = 256
    chunk_frames: int = 1024
    progress: bool = True
    overwrite: bool = False  # discard a video's earlier output made with other settings
    trust_code: bool = False  # allow a checkpoint whose model is built by code it names

    def check(self) -> None:
        if self.stride < 1:
            raise FoldedCNNError(f"--stride must be >= 1, got {self.stride}")
        lo, hi = self.uncertain or DEFAULT_UNCERTAIN
        if not 0 <= lo <= hi <= 1:
            raise FoldedCNNError(f"--uncertain LO HI needs 0 <= LO <= HI <= 1, got {lo} {hi}")
        if self.batch < 1 or self.chunk_frames % self.batch:
            raise FoldedCNNError(f"chunk size {self.chunk_frames} must be a multiple of the batch {self.batch}")


@dataclass
class VideoResult:
    """One video's outcome, as written to summary.json."""

    video: str
    csv: str | None = None
    frames: int = 0
    positives: int = 0
    uncertain: int = 0
    expected_frames: int | None = None  # what the container declares (after --stride), when it says
    truncated: bool = False  # fewer frames decoded than the container declares
    resumed_at_frame: int = 0
    decode_fps: float | None = None
    model_fps: float | None = None
    end_to_end_fps: float | None = None
    error: str | None = None


@dataclass
class JobSummary:
    """The job's outcome, written to summary.json: per video results, the region and the cascade's thresholds
    (`uncertain`), where they came from (`thresholds_from`: "--uncertain", "calibration" or "default") and
    the stored calibration (its expected share of frames for the reference model), if any."""

    checkpoint: str
    backend: str
    videos: list[VideoResult] = field(default_factory=list)
    roi: list[int] | None = None
    uncertain: list[float] | None = None
    thresholds_from: str = "default"
    calibration: dict | None = None

    @property
    def failed(self) -> list[VideoResult]:
        return [v for v in self.videos if v.error]


def video_keys(videos: Sequence[Path]) -> list[str]:
    """Output names: the file stem, plus a short path hash where two videos share a stem."""
    stems = [v.stem for v in videos]
    return [s if stems.count(s) == 1 else f"{s}-{hashlib.sha1(str(v.resolve()).encode()).hexdigest()[:8]}"
            for s, v in zip(stems, videos, strict=True)]


def checkpoint_roi(meta: dict) -> tuple[int, int, int, int] | None:
    """The region the checkpoint's training frames were cropped from, if it recorded one."""
    roi = meta.get("roi") or (meta.get("data_source") or {}).get("roi")
    return tuple(int(v) for v in roi) if roi else None


def count_rows(csv_path: Path, class_names: Sequence[str]) -> tuple[int, int, int]:
    """(frames, positives, uncertain) of a finished CSV; positive = any label but the first class."""
    frames = positives = unsure = 0
    with open(csv_path, newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for *_, label, flag in rows:
            frames += 1
            positives += label != class_names[0]
            unsure += flag == "1"
    return frames, positives, unsure


def label_video(engine, video: Path, key: str, cfg: JobConfig, meta: dict, roi) -> VideoResult:
    """Label one video through `engine`, resuming from stored chunks; errors propagate."""
    class_names = meta["class_names"]
    _, h, w = meta["input_shape"]
    store = ChunkStore(cfg.out_dir, key, header(class_names), cfg.chunk_frames, {
        "video": str(video.resolve()), "checkpoint_sha256": meta["sha256"], "roi": list(roi),
        "stride": cfg.stride, "uncertain": list(cfg.uncertain), "batch": cfg.batch, "decoder": DECODER,
    })
    result = VideoResult(video=str(video), csv=str(store.final_path))
    start = store.open(cfg.overwrite)
    source = FrameSource(video, roi, (h, w), stride=cfg.stride, batch=cfg.batch, skip=start)
    result.expected_frames = source.expected_frames
    if not store.done:
        result.resumed_at_frame = start
        pending: list[list[object]] = []
        chunk_first = start
        model_s, done = 0.0, 0
        t0 = time.perf_counter()
        total = source.expected_frames
        with tqdm(total=total, initial=min(start, total or start), unit="frame", desc=key,
                  disable=not cfg.progress, dynamic_ncols=True) as bar:
            for batch in source:
                tm = time.perf_counter()
                logits = engine.predict(batch.images)
                model_s += time.perf_counter() - tm
                pending += rows_for(batch.index, batch.time_s, logits, class_names, cfg.uncertain)
                done += len(batch.index)
                bar.update(len(batch.index))
                if len(pending) == cfg.chunk_frames:  # chunks hold whole batches (JobConfig.check)
                    store.write_chunk(chunk_first, pending)
                    pending, chunk_first = [], chunk_first + cfg.chunk_frames
            if pending:
                store.write_chunk(chunk_first, pending)
        wall = time.perf_counter() - t0
        if done:
            result.decode_fps = round(done / max(source.decode_seconds, 1e-9), 1)
            result.model_fps = round(done / max(model_s, 1e-9), 1)
            result.end_to_end_fps = round(done / wall, 1)
        store.finish()
    result.frames, result.positives, result.uncertain = count_rows(store.final_path, class_names)
    if result.frames == 0:
        raise FoldedCNNError(f"{video} has no decodable frames")
    return check_complete(result)


def check_complete(result: VideoResult) -> VideoResult:
    """Mark `result` truncated (an error) when fewer frames were labelled than the container declares."""
    if result.expected_frames is not None and result.frames < result.expected_frames:
        result.truncated = True
        result.error = (f"truncated: decoded {result.frames} of the {result.expected_frames} frames its container "
                        "declares (the file is cut short or damaged); the CSV holds the frames that decoded")
    return result


@contextmanager
def core_for_decoding() -> Iterator[int]:
    """Leave one CPU core to the decoder thread: torch (and an ONNX Runtime session built inside)
    use one thread fewer, so inference does not preempt decoding. Yields the threads inference gets."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before - 1))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def job_thresholds(cfg: JobConfig, meta: dict) -> tuple[JobConfig, str]:
    """`cfg` with its cascade thresholds settled, and where they came from: --uncertain when given, else the
    ones `foldedcnn calibrate` stored in the checkpoint, else DEFAULT_UNCERTAIN."""
    if cfg.uncertain is not None:
        return cfg, "--uncertain"
    calibration = stored_calibration(meta)
    if calibration is not None:
        return replace(cfg, uncertain=calibration.thresholds), "calibration"
    return replace(cfg, uncertain=DEFAULT_UNCERTAIN), "default"


def new_summary(cfg: JobConfig, meta: dict, backend: str, roi, thresholds_from: str) -> JobSummary:
    """An empty JobSummary recording the job's region and thresholds."""
    return JobSummary(str(cfg.checkpoint), backend, roi=list(roi), uncertain=list(cfg.uncertain),
                      thresholds_from=thresholds_from, calibration=meta.get("calibration"))


def job_region(cfg: JobConfig, meta: dict) -> tuple[int, int, int, int]:
    """Check `cfg`; the region to crop: --roi, else the one the checkpoint was trained on."""
    cfg.check()
    roi = cfg.roi or checkpoint_roi(meta)
    if roi is None:
        raise FoldedCNNError(f"{cfg.checkpoint} records no region of interest; pass --roi X Y W H")
    return roi


def run_job(cfg: JobConfig) -> JobSummary:
    """Label every video of `cfg`, writing CSVs and summary.json into cfg.out_dir (the checkpoint is read once)."""
    from ..infer import Engine

    ckpt = load_checkpoint(cfg.checkpoint, trust_code=cfg.trust_code)
    roi = job_region(cfg, ckpt.meta)
    cfg, thresholds_from = job_thresholds(cfg, ckpt.meta)
    with exclusive_output(cfg.out_dir), core_for_decoding():
        engine = Engine(ckpt.model, backend=cfg.backend, device=cfg.device, max_batch=cfg.batch)
        summary = new_summary(cfg, ckpt.meta, engine.backend_name, roi, thresholds_from)
        stopped: str | None = None  # once the output cannot be written, the remaining videos are not started
        for video, key in zip(cfg.videos, video_keys(cfg.videos), strict=True):
            if stopped:
                summary.videos.append(VideoResult(video=str(video), error=f"not started: {stopped}"))
                continue
            try:
                summary.videos.append(label_video(engine, video, key, cfg, ckpt.meta, roi))
            except OutputWriteError as exc:
                stopped = str(exc)
                summary.videos.append(VideoResult(video=str(video), error=stopped))
            except FoldedCNNError as exc:
                summary.videos.append(VideoResult(video=str(video), error=str(exc)))
        write_summary(cfg.out_dir, summary)
    return summary


def write_summary(out_dir: Path, summary: JobSummary) -> Path:
    path = out_dir / "summary.json"
    doc = {**asdict(summary), "failed": len(summary.failed)}
    with writing(path):
        atomic_write_text(path, json.dumps(doc, indent=2))
    return path
