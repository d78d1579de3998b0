"""`foldedcnn run`: label every frame of many videos with a (folded) CNN checkpoint.

Every video is indexed (its container's sample table, or a demux pass) and split into segments of
batch-aligned output rows (_plan); a pool of decoder processes (_decode_pool) decodes them, many videos and many
parts of a long video at once, converting only the region of interest, into shared memory. The Engine in
this process labels each batch, and each video's rows are written per chunk as soon as a chunk is whole
(_chunk_store), so a rerun redoes only the missing chunks. summary.json reports frames, positives,
uncertain frames and decode / model / end-to-end frames per second per video. A failing video is
recorded, the others go on; a video NVDEC fails on is decoded whole on the CPU pool after the others
(redo_on_cpu); a video that decodes to fewer frames than its container declares is
`truncated` (both counts in the summary) and counts as failed. One job per output folder (_output_dir: a
lock); the chunks and finished CSVs carry the job's fingerprint, so a rerun with other settings never
mixes results.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from ..checkpoint import load_checkpoint
from ..device import resolve_device
from ..errors import FoldedCNNError, OutputWriteError
from ..fsio import atomic_write_text
from ._chunk_store import writing
from ._decode_pool import DecodePool
from ._decode_tasks import Decoded, Finished
from ._decode_worker import start_decoder_server
from ._decoder_split import NVDEC_SHARE, DecoderChooser
from ._frame_labels import csv_lines_for, is_multiclass
from ._job_video import JobVideo, VideoResult, by_video
from ._nvdec import NVDEC_SESSIONS, NvdecDecoder, check_decoder_request, nvdec_unavailable
from ._output_dir import exclusive_output
from ._plan import plan_tasks
from .calibration import stored_calibration
from .frame_source import region_images
from .video_files import check_each_once

if TYPE_CHECKING:  # the Engine (torch backends) is imported where a job builds one
    from ..infer import Engine

DEFAULT_UNCERTAIN = (0.2, 0.8)


@dataclass
class JobConfig:
    """What `foldedcnn run` was asked to do."""

    checkpoint: Path
    videos: list[Path]
    out_dir: Path
    # x, y, w, h, or several such regions (each frame decoded once for all; a CSV per region); default: the
    # checkpoint's region
    roi: tuple[int, int, int, int] | Sequence[tuple[int, int, int, int]] | None = None
    stride: int = 1
    uncertain: tuple[float, float] | None = None  # default: the checkpoint's calibration, else DEFAULT_UNCERTAIN
    backend: str = "auto"
    device: str | None = None
    batch: int | None = None  # frames per engine call; None: default_batch() for the engine's device
    chunk_frames: int = 1024
    workers: int | None = None  # decoder processes; default: one per core
    decoder: str = "auto"  # auto: the CPU pool (measured faster than NVDEC); gpu: NVDEC for the codecs it takes;
    # both: NVDEC and the CPU pool at once, NVDEC on `nvdec_share` of the frames (_decoder_split)
    nvdec_sessions: int | None = None  # decoder gpu or both: NVDEC sessions, a thread each (None: NVDEC_SESSIONS)
    nvdec_share: float | None = None  # with decoder both: NVDEC's part of the frames (None: NVDEC_SHARE)
    progress: bool = True
    overwrite: bool = False  # discard a video's earlier output made with other settings
    min_age: float = 0.0  # leave out videos modified less than this many seconds before planning (still recording)
    trust_code: bool = False  # allow a checkpoint whose model is built by code it names

    def check(self) -> None:
        check_each_once(self.videos)
        if self.stride < 1:
            raise FoldedCNNError(f"--stride must be >= 1, got {self.stride}")
        lo, hi = self.uncertain or DEFAULT_UNCERTAIN
        if not 0 <= lo <= hi <= 1:
            raise FoldedCNNError(f"--uncertain LO HI needs 0 <= LO <= HI <= 1, got {lo} {hi}")
        if self.batch is not None and self.batch < 1:
            raise FoldedCNNError(f"--batch must be >= 1, got {self.batch}")
        if self.batch is not None and self.chunk_frames % self.batch:
            raise FoldedCNNError(f"--chunk-frames {self.chunk_frames} must be a multiple of --batch {self.batch} (a "
                                 "chunk holds whole batches): pick a batch that divides it, e.g. "
                                 f"{_largest_divisor(self.chunk_frames, self.batch)}, or set --chunk-frames to a "
                                 f"multiple of {self.batch}")
        if not 0 <= self.min_age < float("inf"):
            raise FoldedCNNError(f"--min-age must be a number of seconds >= 0, got {self.min_age}")
        if self.workers is not None and self.workers < 1:
            raise FoldedCNNError(f"--workers must be >= 1, got {self.workers}")
        if self.nvdec_sessions is not None and self.nvdec_sessions < 1:
            raise FoldedCNNError(f"--nvdec-sessions must be >= 1, got {self.nvdec_sessions}")
        if self.nvdec_share is not None and not 0 < self.nvdec_share < 1:
            raise FoldedCNNError(f"--nvdec-share must be between 0 and 1 (NVDEC's part of the frames with --decoder "
                                 f"both), got {self.nvdec_share}")


def _largest_divisor(n: int, at_most: int) -> int:
    """The largest divisor of n that is <= at_most."""
    return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)


@dataclass
class JobSummary:
    """The job's outcome, written to summary.json: per video results, the region and the cascade's thresholds
    (`uncertain`), where they came from (`thresholds_from`: "--uncertain", "calibration" or "default") and
    the stored calibration (its expected share of frames for the reference model), if any."""

    checkpoint: str
    backend: str
    classes: list[str] = field(default_factory=list)  # the checkpoint's class names, the CSVs' p_<class> columns
    videos: list[VideoResult] = field(default_factory=list)  # one per video and region
    roi: list[int] | None = None  # the (first) region
    regions: list[list[int]] = field(default_factory=list)  # every region, in --roi order
    uncertain: list[float] | None = None
    thresholds_from: str = "default"
    calibration: dict | None = None
    decoder: str = "cpu"  # cpu, gpu, or gpu+cpu
    decoder_note: str | None = None  # why --decoder auto did not use NVDEC, how --decoder both split the videos
    workers: int = 0
    frames_per_s: float | None = None  # all videos together, wall clock of the job
    worker_restarts: int = 0
    # where the wall clock went, seconds from the job's start: plan_s (indexing, segments), first_batch_s (the
    # first decoded batch in hand), main_busy_s (this process labelling and writing; the rest it waited for
    # decoders), model_s (the engine alone), wall_s; the CPU time spent: main_cpu_s (this process, all its
    # threads, from the job's start), decoders_cpu_s (the decoder processes); and the decoder processes' waits,
    # summed over them: decoders_idle_s for their next task (from their start or their task before),
    # decoders_slot_wait_s for this process to free a slot, and decoders_done_early_s with no task left for them
    # while others decoded (DecodePool's sums of them)
    timing: dict[str, float | None] = field(default_factory=dict)

    @property
    def multiclass(self) -> bool:
        return is_multiclass(self.classes)

    @property
    def failed(self) -> list[VideoResult]:
        return [v for v in self.videos if v.error]

    @property
    def skipped(self) -> list[VideoResult]:
        """The outputs left out of this run (VideoResult.skipped: modified within --min-age)."""
        return [v for v in self.videos if v.skipped]


def video_keys(videos: Sequence[Path]) -> list[str]:
    """Output names: the file stem, plus a short path hash where two videos share a stem."""
    stems = Counter(v.stem for v in videos)  # counted once: a job may have 100,000 videos
    return [v.stem if stems[v.stem] == 1 else f"{v.stem}-{hashlib.sha1(str(v.resolve()).encode()).hexdigest()[:8]}"
            for v in videos]


def checkpoint_roi(meta: dict) -> tuple[int, int, int, int] | None:
    """The region the checkpoint's training frames were cropped from, if it recorded one."""
    roi = meta.get("roi") or (meta.get("data_source") or {}).get("roi")
    return tuple(int(v) for v in roi) if roi else None


@contextmanager
def core_for_decoding() -> Iterator[int]:
    """Leave one CPU core to decoding: torch (and an ONNX Runtime session built inside) use one thread
    fewer, so inference does not preempt the decoder processes. Yields the threads inference gets."""
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


def new_summary(cfg: JobConfig, meta: dict, backend: str, regions, thresholds_from: str) -> JobSummary:
    """An empty JobSummary recording the job's regions and thresholds."""
    return JobSummary(str(cfg.checkpoint), backend, list(meta["class_names"]), roi=list(regions[0]),
                      regions=[list(r) for r in regions], uncertain=list(cfg.uncertain),
                      thresholds_from=thresholds_from, calibration=meta.get("calibration"))


def job_regions(cfg: JobConfig, meta: dict) -> list[tuple[int, int, int, int]]:
    """Check `cfg` and that the checkpoint takes RGB images; the regions to crop: --roi (one or several), else the one
    the checkpoint was trained on."""
    cfg.check()
    channels = meta["input_shape"][0]
    if channels != 3:
        raise FoldedCNNError(f"{cfg.checkpoint} takes {channels}-channel images; `run` feeds it each region as RGB, as "
                             "foldedcnn's data sets give images (grey repeated 3 times): train it on 3-channel images")
    given = cfg.roi
    if given is None:
        roi = checkpoint_roi(meta)
        if roi is None:
            raise FoldedCNNError(f"{cfg.checkpoint} records no region of interest; pass --roi X Y W H")
        return [roi]
    one = len(given) == 4 and all(isinstance(v, int | float) for v in given)
    regions = [tuple(int(v) for v in r) for r in ([given] if one else given)]
    if not regions or any(len(r) != 4 for r in regions):
        raise FoldedCNNError(f"a region is X Y W H, got {given!r}")
    if len(set(regions)) != len(regions):
        raise FoldedCNNError(f"a region is given twice in {regions}: each --roi gives one output")
    return regions


def job_outputs(cfg: JobConfig, meta: dict, regions) -> list[JobVideo]:
    """Every video of `cfg` once per region: KEY.csv with one region, KEY.region<k>.csv (k from 1) with several."""
    many = len(regions) > 1
    return [JobVideo(len(regions) * i + k, v, f"{key}.region{k + 1}" if many else key, cfg, meta, roi,
                     k + 1 if many else None)
            for i, (v, key) in enumerate(zip(cfg.videos, video_keys(cfg.videos), strict=True))
            for k, roi in enumerate(regions)]


def default_batch(gpu: bool) -> int:
    """Frames per engine call when --batch is not given: 256 for an engine on a GPU; 128 on the CPU, where a
    short video's last batch runs alone once decoding is done (vtest.avi, 2 cores, interleaved: 1,837 frames/s
    end-to-end at 128 against 1,673 at 256, medians of 8; ONNX Runtime is as fast at 128 as at 256)."""
    return 256 if gpu else 128


def with_default_batch(cfg: JobConfig, gpu: bool) -> JobConfig:
    """`cfg` with its batch settled (default_batch when None); both divide the default chunk size."""
    return cfg if cfg.batch is not None else replace(cfg, batch=default_batch(gpu))


def tail_piece(engine: Engine, batch: int) -> int:
    """Rows per piece in which the job's last batches arrive (DecodePool.run): a quarter batch, a multiple of f, so
    the Engine labels the first quarter while the rest decode and is left with one quarter, not a whole batch,
    once decoding ends (a quarter batch costs 1.2x per frame, so only the last round). 0 (whole batches) on a
    GPU, whose batch takes a millisecond, and for an engine whose logits depend on how a batch is cut
    (Engine.batch_independent: the resume's bytes must not)."""
    piece = batch // 4 // engine.fold * engine.fold
    return piece if 0 < piece < batch and engine.device.type == "cpu" and engine.batch_independent else 0


def default_workers() -> int:
    """Decoder processes when not asked: one per core. The Engine's process mostly waits for batches (the job
    is decode-bound), so leaving it a core idles it: on the 2-core machine 2 workers gave 1.7-1.9x the
    end-to-end frames/s of 1 (benchmarks/results/cpu-2core/video.md)."""
    return os.cpu_count() or 1


def run_job(cfg: JobConfig, engine=None) -> JobSummary:
    """Label every video of `cfg`, writing CSVs and summary.json into cfg.out_dir (the checkpoint is read once).

    `engine`: an Engine already built (and warmed) for cfg.checkpoint, e.g. by a benchmark; by default
    one is built here with cfg.backend and cfg.device."""
    from ..infer import Engine

    ckpt = load_checkpoint(cfg.checkpoint, trust_code=cfg.trust_code)
    cfg = with_default_batch(cfg, (engine.device if engine else resolve_device(cfg.device)).type == "cuda")
    regions = job_regions(cfg, ckpt.meta)
    cfg, thresholds_from = job_thresholds(cfg, ckpt.meta)
    class_names, (c, h, w) = ckpt.meta["class_names"], ckpt.meta["input_shape"]
    videos = job_outputs(cfg, ckpt.meta, regions)
    with exclusive_output(cfg.out_dir), core_for_decoding():
        start_decoder_server()  # its imports overlap building the Engine
        engine = engine or Engine(ckpt.model, backend=cfg.backend, device=cfg.device, max_batch=cfg.batch,
                                  pad_to_max=True)
        workers = cfg.workers or default_workers()
        piece = tail_piece(engine, cfg.batch)
        t0 = start_clock(videos)  # end-to-end: indexing, decoder start-up, decoding, labelling, writing
        cpu0 = time.process_time()
        unavailable = nvdec_unavailable(engine.device)
        check_decoder_request(cfg.decoder, unavailable)
        pool_of = partial(DecodePool, batch=cfg.batch, shape=(c * len(regions), h, w))
        with ExitStack() as decoding:
            # the decoders start while the videos are indexed, unless NVDEC may take them all
            pool = None if cfg.decoder == "gpu" else decoding.enter_context(pool_of(workers))
            chooser = DecoderChooser(cfg.decoder, unavailable, cfg.nvdec_share or NVDEC_SHARE)
            tasks = plan_tasks(videos, cfg, (h, w), workers, chooser)
            plan_s = time.perf_counter() - t0
            choice = [v.result.decoder for v in videos]
            gpu_tasks = [t for t in tasks if choice[t.segment.video] == "gpu"]
            cpu_tasks = [t for t in tasks if choice[t.segment.video] == "cpu"]
            used = sorted({choice[t.segment.video] for t in tasks}, reverse=True)
            summary = new_summary(cfg, ckpt.meta, engine.backend_name, regions, thresholds_from)
            summary.decoder, summary.workers = "+".join(used) or "cpu", workers
            summary.decoder_note = chooser.note()
            total = sum(v.rows.rows - v.result.resumed_at_frame for v in videos if v.rows and v.segments_left)
            pool = pool or decoding.enter_context(pool_of(workers if cpu_tasks else 1))
            with tqdm(total=total, unit="frame", disable=not cfg.progress, dynamic_ncols=True) as bar:
                side = (NvdecDecoder(gpu_tasks, str(engine.device), cfg.nvdec_sessions or NVDEC_SESSIONS)
                        if gpu_tasks else None)
                stopped, first_batch_s, busy = _label_events(pool.run(cpu_tasks, side=side, piece=piece), videos,
                                                             engine, class_names, cfg, bar, t0)
                pools = [pool]
                if not stopped and (redo := redo_on_cpu(videos, cfg, ckpt.meta, t0)):
                    redo_tasks = plan_tasks(redo, replace(cfg, overwrite=True), (h, w), workers,
                                            lambda info: ("cpu", None))  # overwrite: NVDEC's rows go
                    bar.total += sum(v.rows.rows for v in redo if v.rows and v.segments_left)
                    pools.append(decoding.enter_context(pool_of(workers)))  # a pool runs one list of tasks
                    stopped, _, redo_busy = _label_events(pools[-1].run(redo_tasks, piece=piece), videos, engine,
                                                          class_names, cfg, bar, t0)
                    busy += redo_busy
                    summary.decoder = "+".join(sorted({v.result.decoder for v in videos if v.result.decoder},
                                                      reverse=True)) or "cpu"
                summary.worker_restarts = sum(p.restarts for p in pools)
        for video in videos:
            if stopped and not video.finished and video.result.error is None:
                video.result.error = f"{'not finished' if video.frames else 'not started'}: {stopped}"
            try:
                video.settle(last_call=True)
            except OutputWriteError as exc:
                video.result.error = str(exc)
        wall, main_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        summary.videos = [v.result for v in videos]
        labelled = frames_labelled(videos)
        summary.frames_per_s = round(labelled / wall, 1) if labelled else None
        summary.timing = {name: None if value is None else round(value, 3) for name, value in (
            ("plan_s", plan_s), ("first_batch_s", first_batch_s), ("main_busy_s", busy),
            ("model_s", sum(v.model_s for v in videos)), ("wall_s", wall), ("main_cpu_s", main_cpu),
            *((f"decoders_{name}", sum(getattr(p, name) for p in pools))
              for name in ("cpu_s", "idle_s", "slot_wait_s", "done_early_s")))}
        write_summary(cfg.out_dir, summary)
    return summary


def redo_on_cpu(videos: list[JobVideo], cfg: JobConfig, meta: dict, t0: float) -> list[JobVideo]:
    """The outputs NVDEC failed on (JobVideo.nvdec_error: damaged data, a profile it does not take), each made
    afresh in `videos` to be planned for the CPU decoder pool from its first row (plan_tasks with overwrite: the
    rows NVDEC gave are discarded, its pixels differing slightly from the CPU's), its end-to-end clock from the
    job's start `t0`; [] when NVDEC failed on none."""
    redo = []
    for v in videos:
        if v.nvdec_error:
            fresh = JobVideo(v.number, v.path, v.store.final_path.stem, cfg, meta, v.roi, v.result.region)
            fresh.fall_back_to_cpu(v.nvdec_error)
            fresh.started = t0
            videos[v.number] = fresh
            redo.append(fresh)
    return redo


def _label_events(events: Iterator[Decoded | Finished], videos: list[JobVideo], engine: Engine,
                  class_names: Sequence[str], cfg: JobConfig, bar: tqdm, t0: float
                  ) -> tuple[str | None, float | None, float]:
    """Label each Decoded batch of `events` into its videos and settle them as batches and Finished segments come;
    returns why the output could not be written (the job stops there) or None, when the first batch came (seconds
    from t0) and the seconds this process spent on the events (labelling, writing)."""
    first_batch_s, busy = None, 0.0
    for event in events:
        t_event = time.perf_counter()
        first_batch_s = first_batch_s or (t_event - t0 if isinstance(event, Decoded) else None)
        outputs = [videos[n] for n in event.task.outputs]  # the video's regions this task decodes
        try:
            if isinstance(event, Decoded):
                bar.update(_label_batch(engine, outputs, event.batch, class_names, cfg))
                event.release()
            else:
                for video in outputs:
                    video.segment_finished(event.end_row, event.reached_end, event.error, event.decode_s)
            for video in outputs:
                video.settle()
        except OutputWriteError as exc:
            for video in outputs:
                video.result.error = video.result.error or str(exc)
            return str(exc), first_batch_s, busy
        busy += time.perf_counter() - t_event
    return None, first_batch_s, busy


def frames_labelled(outputs: list[JobVideo]) -> int:
    """Frames labelled in all: per video, those of its region that got furthest (every region of a frame is
    labelled at once; a region that failed labels none)."""
    return sum(max(v.frames for v in regions) for regions in by_video(outputs))


def start_clock(videos: list[JobVideo]) -> float:
    """Now, recorded as the start of every video: a video's end-to-end frames/s are its frames over the time from
    the job's start to its CSV."""
    t0 = time.perf_counter()
    for video in videos:
        video.started = t0
    return t0


def _label_batch(engine, outputs: list[JobVideo], batch, class_names: Sequence[str], cfg: JobConfig) -> int:
    """Label one batch of frames, images (B, 3R, h, w): region r of every frame goes to outputs[r] (one engine call
    per region, so a folded model folds the same frames together as a job of that region alone); returns the
    region images labelled, those of outputs without an error."""
    labelled = 0
    for r, video in enumerate(outputs):
        if video.result.error is None:
            tm = time.perf_counter()
            logits = engine.predict(region_images(batch.images, r))
            video.model_s += time.perf_counter() - tm
            video.add(batch.first, csv_lines_for(batch.index, batch.time_s, logits, class_names, cfg.uncertain,
                                                 batch.decoded))
            labelled += len(batch.index)
    return labelled


def write_summary(out_dir: Path, summary: JobSummary) -> Path:
    path = out_dir / "summary.json"
    doc = {**asdict(summary), "failed": len(summary.failed), "skipped": len(summary.skipped)}
    with writing(path):
        atomic_write_text(path, json.dumps(doc, indent=2))
    return path
