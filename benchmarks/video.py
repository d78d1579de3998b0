"""Video job speed: decode-only, decode + region, model-only and end-to-end frames/s.

Four workloads, built at run time in a temp folder from vtest.avi (795 frames, 768x576, msmpeg4):
  one    vtest.avi itself
  many   --videos copies of it, labelled in one job
  long   vtest.avi remuxed --long times into one file (packets copied, timestamps shifted)
  clips  --clips copies of vtest.avi's first --clip-frames frames (packets copied): many short videos, as a
         camera's clip store has them (only when asked: --workloads ... clips)
With --codec h264 the workloads are transcoded to H.264 first (libx264, for NVDEC on a GPU machine); with
--codec h264-ts to H.264 with B-frames in MPEG-TS, as broadcast and many cameras record (its seeks land after
the keyframe asked for); with --codec h264-bare to a bare H.264 stream with B-frames, in no container, as a
camera dumps it (no timestamps: its decoders read from its IDR pictures' byte offsets); with --codec mjpeg-bare to
an IP camera's MJPEG dump (every frame a JPEG; its decoders read from any frame's offset).

Per workload, interleaved over --repeats:
  decode-only     one process, one decoder thread, every frame decoded, nothing converted (the yardstick)
  decode+region   the same, plus the job's conversion of the region only, scaled to 50x50 in the same pass
  model-only      Engine.predict on 50x50 frames already in memory (batch --batch), the job's engine: on a CPU
                  it runs one thread fewer than there are cores (core_for_decoding)
  end-to-end      `foldedcnn run` (run_job): indexing, decoder processes, engine, CSV chunks; all frames of
                  the workload over the job's wall time, per --decoders and --workers setting (a decoder that
                  fails is reported with its error and not run again; the others go on); one untimed job per
                  decoder before the repeats starts the decoders' fork server, as `foldedcnn run` does while
                  it builds its Engine (here built once, before)
  decode-only xN  with --decode-together: N = cores such decoders at once, one process each (decode_parallel):
                  the cores' decode capacity together, against which the job is also measured
Ratios: end-to-end / decode-only (the 2-core goal: >= 0.85 on `one`), and end-to-end / (cores x decode-only)
(the 16-core goal: >= 0.7 for `many`, >= 0.6 for `long`), each the median
(min-max) of the ratios of one repeat. Beside them, where the job's time went: first batch s (indexing and
decoders up), main busy (the Engine's process labelling and writing, share of the job's wall clock) and cores
busy (share of all cores' time in use by any process from the job's clock start to its end, /proc/stat in
10 ms ticks: below 100 % the job left cores idle, at 100 % it is bound by the work itself), decoders waiting (the
decoder processes' time waiting for a task, for the Engine's process to free a slot, and with no task left for
them while others decode), and the CPU time
per frame of the decoder processes and of the Engine's process, over that of decode+region plus model-only
alone (above 1: the job's processes spend more per frame than the parts do alone). Writes video.json and
video.md to --out.

    python benchmarks/video.py --out benchmarks/results/cpu-2core
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

import av
import numpy as np
import torch

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.data import VTEST_ROI, vtest_path
from foldedcnn.data.video import iter_frames
from foldedcnn.device import device_name, resolve_device
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine
from foldedcnn.label import JobConfig, run_job
from foldedcnn.label import job as label_job
from foldedcnn.label.job import core_for_decoding, default_batch
from foldedcnn.tables import markdown_table

SIZE = (50, 50)


def remux(src: Path, dst: Path, times: int = 1, frames: int | None = None) -> Path:
    """`src`'s video packets `times` over into one file, timestamps shifted so they follow on; only the first
    `frames` packets of it (decode order: its first frames, in a stream without B-frames) when given."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream_in = inp.streams.video[0]
        stream_out = out.add_stream_from_template(stream_in)
        offset = 0
        for _ in range(times):
            inp.seek(0)
            last = 0
            packets = (p for p in inp.demux(stream_in) if p.pts is not None and p.size)
            for packet in itertools.islice(packets, frames):
                last = max(last, packet.pts + (packet.duration or 1))
                packet.dts = None if packet.dts is None else packet.dts + offset  # B-frames: dts before pts
                packet.pts += offset
                packet.stream = stream_out
                out.mux(packet)
            offset += last
    return dst


_BARE_SUFFIXES = (".h264", ".mjpeg")  # bare streams: a long one is its bytes repeated (repeat_bare), not remuxed


def repeat_bare(src: Path, dst: Path, times: int) -> Path:
    """The bare stream `src` (no container, no timestamps: a camera's .h264 or .mjpeg dump) `times` over into one
    file: its bytes one after the other, each copy starting with its parameter sets and a picture to start from."""
    dst.write_bytes(src.read_bytes() * times)
    return dst


def transcode(src: Path, dst: Path, codec: str, options: dict[str, str]) -> Path:
    """`src`'s frames encoded with `codec` (encoder `options`) into the container of `dst`'s suffix."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream(codec, rate=inp.streams.video[0].average_rate)
        stream.width, stream.height, stream.pix_fmt = inp.streams.video[0].width, inp.streams.video[0].height, "yuv420p"
        stream.options = options
        for frame in inp.decode(video=0):
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode())
    return dst


def transcode_h264(src: Path, dst: Path, b_frames: int = 0) -> Path:
    """`src` as H.264 (libx264 veryfast, a keyframe every 250 frames, `b_frames` B-frames) in `dst`'s container."""
    return transcode(src, dst, "libx264", {"preset": "veryfast", "g": "250", "bf": str(b_frames)})


def _decoded(videos: list[Path], limit: int | None) -> int:
    """Frames one thread decodes from `videos` one after another (the first `limit` of them), none converted."""
    n = 0
    for v in videos:
        with av.open(str(v)) as c:
            c.streams.video[0].thread_count = 1
            for _ in itertools.islice(c.decode(video=0), None if limit is None else limit - n):
                n += 1
        if limit is not None and n >= limit:
            break
    return n


def decode_only(videos: list[Path], limit: int | None = None) -> float:
    """Frames/s of one thread decoding `videos` one after another (the first `limit` frames of them)."""
    t0 = time.perf_counter()
    return _decoded(videos, limit) / (time.perf_counter() - t0)


def decode_parallel(pool: ProcessPoolExecutor, n: int, videos: list[Path], limit: int | None = None) -> float:
    """Frames/s of `n` one-thread decoders at once, each in its own (started) process of `pool`, decoding
    `videos` from a different one on (the first `limit` frames), nothing converted: what the machine's cores
    decode together, beside which the single decoder's rate times n may be out of reach (shared caches, memory
    bandwidth, a VM's cores that are hyperthreads of one another, clocks that drop with every core busy)."""
    t0 = time.perf_counter()
    jobs = [pool.submit(_decoded, videos[i % len(videos):] + videos[:i % len(videos)], limit) for i in range(n)]
    frames = sum(job.result() for job in jobs)
    return frames / (time.perf_counter() - t0)


def decode_region(videos: list[Path], limit: int | None = None) -> tuple[float, np.ndarray]:
    """decode_only plus the job's region conversion; also the (N, 3, 50, 50) crops."""
    t0, crops = time.perf_counter(), []
    for v in videos:
        frames = iter_frames(v, roi=VTEST_ROI, size=SIZE, threads=1)
        crops += [f.rgb.transpose(2, 0, 1) for f in itertools.islice(frames, None if limit is None else
                                                                        limit - len(crops))]
        if limit is not None and len(crops) >= limit:
            break
    return len(crops) / (time.perf_counter() - t0), np.stack(crops)


def model_only(engine: Engine, frames: np.ndarray, batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(frames), batch):
        engine.predict(frames[i:i + batch])
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    return len(frames) / (time.perf_counter() - t0)


def cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores since boot, from /proc/stat (Linux); None elsewhere."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(values) - values[3] - values[4], sum(values)  # idle and iowait are not busy


@contextmanager
def jiffies_at_job_start(marks: dict) -> Iterator[None]:
    """Within it, marks["start"] = cpu_jiffies() when run_job starts its clock (label.job.start_clock), so cores
    busy covers the window of the job's wall_s (which end-to-end frames/s count) and not the checkpoint loading
    and output checks before it (45 ms of one core for vtest.avi on the 2-core VM, a seventh of that job)."""
    real = label_job.start_clock

    def start_clock(videos):
        marks["start"] = cpu_jiffies()
        return real(videos)

    label_job.start_clock = start_clock
    try:
        yield
    finally:
        label_job.start_clock = real


def end_to_end(engine: Engine, ckpt: Path, videos: list[Path], args, setting: str, workers: int
               ) -> tuple[float, dict]:
    """The job's frames/s in all, and where its wall clock went (JobSummary.timing, plus cores_busy: the share of
    the machine's core time in use by any process from the job's clock start to its end; None without
    /proc/stat). `setting`: the --decoder, with ":N" for N NVDEC sessions (gpu:7)."""
    decoder, _, sessions = setting.partition(":")
    with tempfile.TemporaryDirectory() as out:
        cfg = JobConfig(ckpt, videos, Path(out), roi=VTEST_ROI, batch=args.batch, chunk_frames=4 * args.batch,
                        backend=args.backend, device=args.device, workers=workers, decoder=decoder,
                        nvdec_sessions=int(sessions) if sessions else None,
                        progress=False)
        marks: dict[str, tuple[int, int] | None] = {}
        with core_for_decoding(), jiffies_at_job_start(marks):
            summary = run_job(cfg, engine)
        before, after = marks.get("start"), cpu_jiffies()
        assert not summary.failed, summary.failed
        busy = None if before is None or after is None or after[1] == before[1] else \
            round((after[0] - before[0]) / (after[1] - before[1]), 3)
        frames = sum(v.frames for v in summary.videos)
        return summary.frames_per_s, {**summary.timing, "cores_busy": busy, "frames": frames}


def attempt_end_to_end(failed: dict[str, str], engine: Engine, ckpt: Path, videos: list[Path], args, setting: str,
                       workers: int) -> tuple[float, dict] | None:
    """end_to_end(...), or None when it fails, its error recorded in `failed` under `setting` and printed (e.g.
    NVDEC missing on this machine: the other settings run)."""
    try:
        return end_to_end(engine, ckpt, videos, args, setting, workers)
    except Exception as exc:
        failed[setting] = f"{type(exc).__name__}: {exc}"
        print(f"end-to-end with --decoder {setting} failed: {failed[setting]}", flush=True)
        return None


def _median_share(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):.0%}" if known else "n/a"


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fold", type=int, default=4)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--device", default=None)
    ap.add_argument("--decoders", nargs="+", default=["auto"], choices=["auto", "cpu", "gpu", "both"],
                    help="end-to-end with each (e.g. cpu gpu both: the CPU pool, NVDEC, and the two at once side by "
                         "side)")
    ap.add_argument("--nvdec-sessions", type=int, nargs="+", default=None, metavar="N",
                    help="end-to-end with --decoder gpu and both once per N NVDEC sessions (default: the job's)")
    ap.add_argument("--codec", default="copy", choices=["copy", "h264", "h264-ts", "h264-bare", "mjpeg-bare"],
                    help="h264: transcode for NVDEC; h264-ts: H.264 with 3 B-frames in MPEG-TS; h264-bare: the same "
                         "in no container (.h264); mjpeg-bare: an MJPEG dump (.mjpeg)")
    ap.add_argument("--batch", type=int, default=None, help="default: the job's (label.job.default_batch)")
    ap.add_argument("--videos", type=int, default=2 * (os.cpu_count() or 1), help="copies in the `many` workload")
    ap.add_argument("--long", type=int, default=20, help="vtest.avi repeated this often in the `long` workload")
    ap.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count() or 1])
    ap.add_argument("--clips", type=int, default=200, help="short videos in the `clips` workload")
    ap.add_argument("--clip-frames", type=int, default=50, help="frames of each video of the `clips` workload")
    ap.add_argument("--workloads", nargs="+", default=["one", "many", "long"], choices=["one", "many", "long", "clips"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--yardstick-frames", type=int, default=None, metavar="N",
                    help="decode-only and decode+region time the first N frames of a workload (default: all); "
                         "a rate, so a prefix of the same videos gives it in less time")
    ap.add_argument("--decode-together", action="store_true",
                    help="also time decode-only in as many processes at once as there are cores (decode_parallel)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu-2core"))
    args = ap.parse_args()
    args.batch = args.batch or default_batch(resolve_device(args.device).type == "cuda")
    settings = [f"{d}:{n}" if n else d for d in args.decoders  # gpu:N and both:N per --nvdec-sessions N
                for n in (args.nvdec_sessions or [None] if d in ("gpu", "both") else [None])]
    tmp, pool = Path(tempfile.mkdtemp()), None
    try:
        source = vtest_path()
        one = (transcode_h264(source, tmp / "vtest.mp4") if args.codec == "h264" else
               transcode_h264(source, tmp / "vtest.ts", b_frames=3) if args.codec == "h264-ts" else
               transcode_h264(source, tmp / "vtest.h264", b_frames=3) if args.codec == "h264-bare" else
               transcode(source, tmp / "vtest.mjpeg", "mjpeg", {"strict": "-1"}) if args.codec == "mjpeg-bare" else
               shutil.copy(source, tmp))
        one = Path(one)
        makers = {"one": lambda: [one],
                  "many": lambda: [shutil.copy(one, tmp / f"copy{i}{one.suffix}") for i in range(args.videos)],
                  "long": lambda: [remux(one, tmp / f"long{one.suffix}", args.long) if one.suffix not in
                                   _BARE_SUFFIXES else repeat_bare(one, tmp / f"long{one.suffix}", args.long)],
                  "clips": lambda: [shutil.copy(remux(one, tmp / f"clip{one.suffix}", frames=args.clip_frames),
                                                tmp / f"clip{i:05d}{one.suffix}") for i in range(args.clips)]}
        workloads = {k: [Path(p) for p in makers[k]()] for k in dict.fromkeys(args.workloads)}
        # decode_parallel's processes, forked before any Engine exists (no CUDA in them, no torch imported again),
        # every one started before timing
        cores = os.cpu_count() or 1
        pool = ProcessPoolExecutor(cores, mp_context=get_context("fork")) if args.decode_together else None
        for job in [pool.submit(_decoded, [], 0) for _ in range(cores)] if pool else []:
            job.result()
        torch.manual_seed(0)
        ckpt = save_checkpoint(tmp / "coral.safetensors", FoldedModel.from_zoo("noscope-coral", args.fold),
                               class_names=["absent", "present"])
        with core_for_decoding():  # the job's engine (one thread fewer), for model-only too: a second compiled
            engine = Engine(ckpt, backend=args.backend, device=args.device, max_batch=args.batch,  # one recompiles
                            pad_to_max=True)  # as the job builds it
        load_before = os.getloadavg()
        _, frames = decode_region([one])  # warms the file cache; the frames for model-only
        with core_for_decoding():  # compile every batch bucket the job can meet (one for a static-shape backend)
            for n in sorted({2 ** k for k in range(args.batch.bit_length())} | {args.batch}):
                engine.predict(frames[:n])
        samples: dict[tuple[str, str], list[float]] = {}
        failed: dict[str, str] = {}  # decoder setting -> its first error
        timings: dict[tuple[str, str], list[dict]] = {}
        first = next(iter(workloads.values()))
        for decoder in settings:  # one untimed job each: the decoders' fork server starts (PyAV, OpenCV imported once
            # per process; `foldedcnn run` starts it while it builds its Engine) in none of the repeats
            attempt_end_to_end(failed, engine, ckpt, first, args, decoder, args.workers[0])
        for _ in range(args.repeats):
            for name, videos in workloads.items():
                samples.setdefault((name, "decode-only"), []).append(decode_only(videos, args.yardstick_frames))
                if pool:
                    samples.setdefault((name, "decode-only x cores"), []).append(
                        decode_parallel(pool, cores, videos, args.yardstick_frames))
                samples.setdefault((name, "decode+region"), []).append(decode_region(videos, args.yardstick_frames)[0])
                with core_for_decoding():
                    samples.setdefault((name, "model-only"), []).append(model_only(engine, frames, args.batch))
                for decoder in [d for d in settings if d not in failed]:
                    for w in args.workers:
                        if (result := attempt_end_to_end(failed, engine, ckpt, videos, args, decoder, w)) is None:
                            break
                        fps, timing = result
                        samples.setdefault((name, f"end-to-end {decoder} w={w}"), []).append(fps)
                        timings.setdefault((name, f"{decoder} w={w}"), []).append(timing)
        load_after = os.getloadavg()
    finally:
        if pool:  # its forked decoders end with the benchmark, also when it fails
            pool.shutdown(cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for name, videos in workloads.items():
        dec = samples[(name, "decode-only")]
        for decoder, w in [(d, w) for d in settings for w in args.workers]:
            e2e = samples.get((name, f"end-to-end {decoder} w={w}"), [])
            if len(e2e) < len(dec):  # the decoder failed (in this repeat or an earlier one)
                rows.append({"workload": name, "videos": len(videos), "decoder": decoder, "workers": w,
                             "end-to-end f/s": f"failed: {failed.get(decoder, '?')}"})
                continue
            # per repeat, end-to-end over the decode-only run just before it: this VM's speed drifts between
            # repeats (decode-only alone spans 1.7-2.8k frames/s), so ratios are paired, then their median taken
            ratio = [e / d for e, d in zip(e2e, dec, strict=True)]
            together = [e / d for e, d in zip(e2e, samples.get((name, "decode-only x cores"), dec), strict=True)]
            job_timing = timings[(name, f"{decoder} w={w}")]
            # CPU per frame of the job's processes against the parts alone (decode+region, model-only), per repeat
            cpu_us = [{k: 1e6 * t[k] / t["frames"] for k in ("decoders_cpu_s", "main_cpu_s")} for t in job_timing]
            alone = [1e6 / r + 1e6 / m for r, m in zip(samples[(name, "decode+region")], samples[(name, "model-only")],
                                                         strict=True)]
            cpu_ratio = [(c["decoders_cpu_s"] + c["main_cpu_s"]) / a for c, a in zip(cpu_us, alone, strict=True)]
            rows.append({
                "workload": name, "videos": len(videos), "decoder": decoder, "workers": w,
                "decode-only f/s": fmt(samples[(name, "decode-only")]),
                "decode+region f/s": fmt(samples[(name, "decode+region")]),
                "model-only f/s": fmt(samples[(name, "model-only")]),
                "end-to-end f/s": fmt(e2e),
                # the job's start (indexing, decoders up) and its main process's share of the wall clock
                "first batch s": round(statistics.median(t["first_batch_s"] for t in job_timing), 3),
                "main busy": f"{statistics.median(t['main_busy_s'] / t['wall_s'] for t in job_timing):.0%}",
                "cores busy": _median_share([t.get("cores_busy") for t in job_timing]),
                # the decoder processes' time waiting for a task, for a free slot, and with none left: share of theirs
                "decoders waiting, task / slot / none left": " / ".join(_median_share(
                    [t.get(key, 0) / (w * t["wall_s"]) for t in job_timing]) for key in (
                    "decoders_idle_s", "decoders_slot_wait_s", "decoders_done_early_s")),
                "CPU us/frame, decoders + main": f"{statistics.median(c['decoders_cpu_s'] for c in cpu_us):.0f} + "
                                                 f"{statistics.median(c['main_cpu_s'] for c in cpu_us):.0f}",
                "CPU / parts alone": f"{statistics.median(cpu_ratio):.2f}",
                "e2e / decode-only": f"{statistics.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f})",
                f"e2e / ({cores} x decode-only)": round(statistics.median(ratio) / cores, 2),
                **({f"decode-only x{cores} f/s": fmt(samples[(name, "decode-only x cores")]),
                    f"e2e / decode-only x{cores}": f"{statistics.median(together):.2f} ({min(together):.2f}-"
                                                   f"{max(together):.2f})"} if pool else {}),
            })
    machine = {"device": device_name(engine.device), "cpu": device_name("cpu"), "cores": cores,
               "python": platform.python_version(), "torch": torch.__version__, "av": av.__version__,
               "backend": engine.backend_name, "load_avg_before": load_before, "load_avg_after": load_after}
    command = "python benchmarks/video.py " + " ".join(sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "video.json").write_text(json.dumps({
        "machine": machine, "command": command, "batch": args.batch, "repeats": args.repeats, "fold": args.fold,
        "decoders": settings, "failed": failed, "codec": args.codec, "rows": rows,
        "samples": {f"{k[0]}/{k[1]}": v for k, v in samples.items()},
        "timings": {f"{k[0]}/{k[1]}": v for k, v in timings.items()},
    }, indent=2))
    columns = ["workload", "videos", "decoder", "workers", "decode-only f/s", "decode+region f/s", "model-only f/s",
               "end-to-end f/s", "e2e / decode-only", f"e2e / ({cores} x decode-only)",
               *([f"decode-only x{cores} f/s", f"e2e / decode-only x{cores}"] if pool else []), "first batch s",
               "main busy", "cores busy", "decoders waiting, task / slot / none left", "CPU us/frame, decoders + main",
               "CPU / parts alone"]
    table = markdown_table(rows, columns)
    about = {"one": "one = vtest.avi (795 frames)", "many": f"many = {args.videos} copies",
             "long": f"long = vtest remuxed {args.long}x ({795 * args.long} frames)",
             "clips": f"clips = {args.clips} videos of vtest's first {args.clip_frames} frames"}
    (args.out / "video.md").write_text(
        f"# Video job speed (vtest.avi, region {VTEST_ROI} -> 50x50, noscope-coral f = {args.fold})\n\n"
        f"Machine: {machine['device']} ({machine['cpu']}), torch {machine['torch']}, PyAV {machine['av']}, "
        f"backend {machine['backend']}, codec {args.codec}. Batch {args.batch}; "
        f"median (min-max) of {args.repeats} interleaved repeats. Load average before/after: "
        f"{load_before[0]:.1f}/{load_after[0]:.1f} (on {os.cpu_count()} cores).\n\n"
        f"Workloads: {'; '.join(about[name] for name in workloads)}. "
        "decode-only: one process, one decoder thread, no conversion"
        f"{f', the first {args.yardstick_frames} frames of the workload' if args.yardstick_frames else ''}. "
        + (f"decode-only x{cores}: {cores} such processes at once, each from another video of the workload on "
           "(frames of all over the wall time: what the cores decode together). " if pool else "") +
        "cores busy: share of all cores' time in use by any process from the job's clock start to its end. "
        "decoders waiting: the decoder processes' time waiting for their next task (from their start or their task "
        "before), for the Engine's process to free a slot, and with no task left for them while others decoded, "
        "over workers x the job's wall time (summary.json's decoders_idle_s, decoders_slot_wait_s, "
        "decoders_done_early_s). "
        "CPU us/frame: CPU time of the decoder processes and of the Engine's process (all its threads) per frame "
        "(summary.json's decoders_cpu_s, main_cpu_s); CPU / parts alone: their sum over the CPU time per frame of "
        "decode+region and model-only, measured alone in the same repeat.\n\n"
        f"{table}\n\nCommand: `{command}`\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
