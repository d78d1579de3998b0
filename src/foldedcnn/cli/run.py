"""`foldedcnn run`: label every frame of videos with a checkpoint (locally or on Ray)."""

from __future__ import annotations

from pathlib import Path

OK_LINES = 20  # outputs listed one by one; above, one line for those that finished (failures are always listed)


def register(sub) -> None:
    p = sub.add_parser("run", help="label every frame of videos with a checkpoint; resumable; --ray to scale out")
    p.add_argument("checkpoint", type=Path, help="a .safetensors checkpoint from `foldedcnn train`")
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEO",
                   help="a video file, or a folder: the video files under it (by suffix: .mp4, .mkv, .avi, .ts, ... "
                        "case-insensitive), at any depth, in path order")
    p.add_argument("--out", type=Path, required=True, help="folder for one CSV per video and summary.json")
    p.add_argument("--roi", nargs=4, type=int, metavar=("X", "Y", "W", "H"), action="append",
                   help="region to crop, in the frame as players show it (a phone's portrait video turned; default: "
                        "the region the checkpoint was trained on); repeat it to label several regions of each "
                        "frame, decoded once: a CSV per video and region, KEY.region<k>.csv")
    p.add_argument("--stride", type=int, default=1, help="label every N-th frame (default 1)")
    p.add_argument("--uncertain", nargs=2, type=float, default=None, metavar=("LO", "HI"),
                   help="scores in (LO, HI) are flagged for the reference model (default: the thresholds "
                        "`foldedcnn calibrate` stored in the checkpoint, else 0.2 0.8)")
    p.add_argument("--backend", default="auto",
                   help="engine backend: auto, torch, compile, compile-max (GPU), onnxruntime, triton (GPU)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--batch", type=int, default=None,
                   help="frames per engine call (default: 128 with the engine on the CPU, 256 on a GPU)")
    p.add_argument("--chunk-frames", type=int, default=1024,
                   help="rows per crash-safe output chunk; a multiple of --batch (default 1024)")
    p.add_argument("--workers", type=int, default=None,
                   help="decoder processes (default: one per CPU core); a long video is split among them")
    p.add_argument("--decoder", choices=["auto", "cpu", "gpu", "both"], default="auto",
                   help="gpu: NVDEC for the videos it can decode (needs CUDA and PyNvVideoCodec), the CPU for the "
                        "rest; both: NVDEC and the CPU decoder processes at once, on --nvdec-share of the frames "
                        "and the rest; cpu: the decoder processes; auto (default): cpu, measured the faster")
    p.add_argument("--nvdec-sessions", type=int, default=None,
                   help="with --decoder gpu or both: NVDEC sessions, each decoding in its own thread (default 4; an "
                        "H100 or H200 has 7 NVDEC engines)")
    p.add_argument("--nvdec-share", type=float, default=None,
                   help="with --decoder both: NVDEC's part of the frames, whole videos in order (default 0.34: "
                        "NVDEC's rate over both rates, measured on an H200)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="discard a video's earlier output in --out that was made with other settings")
    p.add_argument("--min-age", type=float, default=0.0, metavar="SECONDS",
                   help="leave out videos modified less than SECONDS ago: a camera's recording still being written "
                        "(labelled now, its end would be missing, and a later run would refuse the grown file); "
                        "summary.json lists them as skipped, and the same command run later labels them "
                        "(default 0: every video)")
    p.add_argument("--trust-code", action="store_true",
                   help="allow a checkpoint whose model is built by code it names (a fold plan's factory); "
                        "only for files whose author you trust")
    p.add_argument("--ray", action="store_true", help="run on Ray Data (local Ray, or --address)")
    p.add_argument("--address", default=None, help="Ray cluster address, e.g. ray://head:10001 or auto")
    p.add_argument("--actors", type=int, default=None, help="engine actors on Ray (default: one per GPU, "
                                                            "or half the CPUs)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..label import JobConfig, run_job
    from ..label.video_files import expand_videos

    cfg = JobConfig(
        checkpoint=args.checkpoint, videos=expand_videos(args.videos), out_dir=args.out,
        roi=[tuple(r) for r in args.roi] if args.roi else None, stride=args.stride,
        uncertain=tuple(args.uncertain) if args.uncertain else None,
        backend=args.backend, device=args.device, batch=args.batch, chunk_frames=args.chunk_frames,
        workers=args.workers, decoder=args.decoder, nvdec_sessions=args.nvdec_sessions, nvdec_share=args.nvdec_share,
        progress=not args.no_progress, overwrite=args.overwrite, min_age=args.min_age,
        trust_code=args.trust_code,
    )
    if args.ray:
        from ..label import run_job_ray

        summary = run_job_ray(cfg, args.address, args.actors)
    else:
        summary = run_job(cfg)
    print(_cascade_line(summary))
    quiet = len(summary.videos) > OK_LINES  # thousands of clips: their ok lines are in summary.json
    for v in summary.videos:
        name = v.video if v.region is None else f"{v.video} region {v.region} {tuple(v.roi)}"
        missing = (f" ({v.missing_frames} frames missing from the file: its timestamps jump over them, "
                   "summary.json's gaps_s says where)" if v.missing_frames else "")
        if v.truncated:
            print(f"TRUNCATED {name}: {v.error}{missing} -> {v.csv}")
        elif v.error:
            print(f"FAILED  {name}: {v.error}")
        elif v.skipped and not quiet:
            print(f"skipped {name}: {v.skipped}")
        elif not quiet:
            speed = f", {v.end_to_end_fps} frames/s" if v.end_to_end_fps else ""
            damaged = f", {v.undecodable} undecodable (damaged data: rows without a label)" if v.undecodable else ""
            print(f"ok      {name}: {v.frames} frames, {_counts(summary, v)}, {v.uncertain} uncertain{damaged}"
                  f"{missing}{speed}, decoded on {v.decoder or 'cpu'} -> {v.csv}")
        if v.note and not quiet:
            print(f"note    {name}: {v.note}")
    if quiet:
        ok = [v for v in summary.videos if not v.error and not v.skipped]
        noted = sum(1 for v in summary.videos if v.note)
        damaged = sum(v.undecodable for v in ok)
        missing = sum(v.missing_frames or 0 for v in ok)
        print(f"ok      {len(ok):,} of {len(summary.videos):,} outputs: {sum(v.frames for v in ok):,} frames, "
              f"{sum(v.uncertain for v in ok):,} uncertain"
              + (f", {damaged:,} undecodable (damaged data)" if damaged else "")
              + (f", {missing:,} missing from the files (their timestamps jump over them)" if missing else "")
              + (f"; {noted:,} with a note" if noted else "")
              + (f"; {len(summary.skipped):,} skipped (--min-age)" if summary.skipped else "")
              + " (each output's counts and notes: summary.json)")
    if summary.decoder_note:
        print(f"decoder {summary.decoder}: {summary.decoder_note}")
    decoders = f"{summary.workers} decoder processes" if summary.workers else "decoding in Ray tasks"
    done_before = (summary.videos and not summary.failed and not summary.skipped  # a rerun of a finished job
                   and not summary.frames_per_s)
    speed = (f"{summary.frames_per_s} frames/s in all" if summary.frames_per_s else
             "nothing left to label: every output was done before" if done_before else "no frame labelled")
    print(f"summary: {args.out / 'summary.json'} (backend {summary.backend}, decoder {summary.decoder}, "
          f"{decoders}, {speed})")
    return 1 if summary.failed else 0


def _cascade_line(summary) -> str:
    """What the cascade does with the job's thresholds: a two-class model's score band, or a multi-class model's
    floor on its top-class probability."""
    lo, hi = summary.uncertain
    if summary.multiclass:
        source = ("thresholds from --uncertain" if summary.thresholds_from == "--uncertain" else
                  "default threshold; --uncertain LO HI sets it")
        return (f"cascade: frames whose top-class probability is below {hi:.7g} go to the reference model "
                f"({len(summary.classes)} classes: only the high threshold is used; {source})")
    return f"cascade: frames with {lo:.7g} < score < {hi:.7g} go to the reference model ({_threshold_source(summary)})"


def _counts(summary, video, shown: int = 3) -> str:
    """A video's positives (two classes) or its most frequent labels (more)."""
    if not summary.multiclass:
        return f"{video.positives} positive"
    top = [f"{name} x{n}" for name, n in list(video.labels.items())[:shown]]
    more = len(video.labels) - shown
    return "labels " + ", ".join(top) + (f" and {more} more" if more > 0 else "")


def _threshold_source(summary) -> str:
    if summary.thresholds_from != "calibration":
        note = "" if summary.thresholds_from == "--uncertain" else "; `foldedcnn calibrate` sets them from data"
        return f"thresholds from {summary.thresholds_from}{note}"
    c = summary.calibration
    return (f"calibrated on {c['data']} {c['split']} for max-fn {c['max_fn']:g}, max-fp {c['max_fp']:g}: "
            f"expected {c['reference_share']:.1%} of frames")
