"""GPU decoding on NVDEC (PyNvVideoCodec), and the choice between it and the CPU decoder pool.

`choose_decoder` picks per video: `--decoder cpu` never touches the GPU; `gpu` (and `both`, which shares the
videos between NVDEC and the CPU pool: _decoder_split) needs a CUDA device
and PyNvVideoCodec (`pip install "foldedcnn[nvdec]"`) and is refused with one clear error without
them, and sends a video whose codec NVDEC does not decode (msmpeg4, ffv1, ...), or a bare stream in no
container (which PyNvVideoCodec's SimpleDecoder cannot seek), to the CPU pool with a note in summary.json;
`auto` (the default) takes the CPU pool, the faster of the two as measured: on a 16-core H200 machine,
16 H.264 videos, NVDEC labelled 2,254 frames/s and the CPU pool 4,389 in the same run
(benchmarks/results/gpu-h200-2026-11-28/video-nvdec; 878 against 3,850 before the reader below).

`NvdecDecoder` decodes the segments given to it in background threads of the Engine's process, each with
its own NVDEC session (a GPU has several NVDEC engines: 7 on an H100 or H200): a segment is read in order,
seeking once to its first frame and then taking the next frames batch by batch (`get_batch_frames`); the
measured 878 frames/s came from fetching every batch by frame index (`get_batch_frames_by_index`) in one
thread. Frames come out as planar RGB on the GPU, as stored; each frame's region is cut there (the stored box
holding the region of the frame as shown: data._orientation, read from the video's first frame with PyAV)
before the batch is stacked, resized (area averaging, like the CPU path's INTER_AREA for downscaling; pixel
values differ slightly from the CPU path: another YUV->RGB conversion and resampler) and turned as shown,
and batches go to the Engine without a host copy. Frame times come from the job's index of the video
(VideoIndex.seconds), the timestamps the CPU decoder gives its frames. A segment NVDEC fails on ends with the
error in its Finished event; the job then decodes that video whole on the CPU pool (job.redo_on_cpu).
NVDEC_SESSIONS is not tuned yet: 4 sessions left the cores 84-85 % idle.
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from ..data.video import Orientation, VideoInfo, check_shown_roi, shown_orientation
from ..errors import FoldedCNNError
from ._decode_tasks import Decoded, DecodeTask, Finished
from .frame_source import FrameBatch

# Codecs NVDEC decodes on every GPU since Turing (NVIDIA Video Codec SDK support matrix), by FFmpeg name.
NVDEC_CODECS = frozenset({"h264", "hevc", "av1", "vp8", "vp9", "mpeg1video", "mpeg2video", "mpeg4", "vc1"})
DECODERS = ("auto", "cpu", "gpu", "both")
DECODER_PROGRAM = {"cpu": "pyav", "gpu": "nvdec"}  # what decodes and crops frames: part of a video's fingerprint


def nvdec_unavailable(engine_device) -> str | None:
    """Why NVDEC cannot feed an Engine on `engine_device` (a torch.device) in this process, or None when it can."""
    import torch

    if engine_device.type != "cuda" or not torch.cuda.is_available():
        return "the engine does not run on a CUDA device"
    try:
        import PyNvVideoCodec  # noqa: F401
    except ImportError:
        return "PyNvVideoCodec is not installed (pip install 'foldedcnn[nvdec]')"
    return None


def check_decoder_request(requested: str, unavailable: str | None) -> None:
    """One clear error for an unknown `--decoder`, or for `gpu` where NVDEC cannot be used (`unavailable`: what
    nvdec_unavailable() said)."""
    if requested not in DECODERS:
        raise FoldedCNNError(f"--decoder must be one of {', '.join(DECODERS)}, got {requested!r}")
    if requested in ("gpu", "both") and unavailable:
        raise FoldedCNNError(f"--decoder {requested}: NVDEC cannot be used here ({unavailable}); use --decoder cpu or "
                             "auto")


# Demuxers of bare elementary streams (a camera's .h264 dump): PyNvVideoCodec's SimpleDecoder needs a container's index
RAW_STREAMS = frozenset({"h264", "hevc", "m4v", "mpegvideo", "vvc", "obu"})


def choose_decoder(requested: str, info: VideoInfo, unavailable: str | None) -> tuple[str, str | None]:
    """"gpu" or "cpu" for a video probed as `info` (after check_decoder_request), and a note saying why it is
    not where `requested` would put it. "auto" is "cpu": the CPU pool is the faster (module docstring)."""
    if requested != "gpu" or unavailable:
        return "cpu", None
    if info.codec not in NVDEC_CODECS:
        return "cpu", f"codec {info.codec} is not decoded by NVDEC; decoded on the CPU"
    if info.container in RAW_STREAMS:
        return "cpu", (f"a bare {info.container} stream, in no container: NVDEC's reader needs a container's "
                       "index; decoded on the CPU")
    return "gpu", None


NVDEC_SESSIONS = 4  # decoder threads, each one NVDEC session, by default (not tuned yet; --nvdec-sessions help says 4)


class NvdecDecoder:
    """Decode `tasks` on NVDEC in `sessions` background threads; `events` receives Decoded and Finished, each
    task's in order."""

    def __init__(self, tasks: list[DecodeTask], device: str = "cuda", sessions: int = NVDEC_SESSIONS) -> None:
        self.device = device
        self.events: queue.Queue = queue.Queue(maxsize=4 * max(1, sessions))
        self.pending = len(tasks)
        self._turns: dict = {}  # per video: how its frames are shown (its segments' tasks share it)
        self._todo: queue.SimpleQueue = queue.SimpleQueue()
        for task in tasks:
            self._todo.put(task)
        self._threads = [threading.Thread(target=self._run, name=f"nvdec-{i}", daemon=True)
                         for i in range(min(sessions, len(tasks)))]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while True:
            try:
                task = self._todo.get_nowait()
            except queue.Empty:
                return
            t0, end_row, error = time.perf_counter(), task.segment.first_row, None
            try:
                for batch in self._decode(task):
                    self.events.put(Decoded(task, batch, lambda: None))
                    end_row = batch.first + len(batch.index)
            except Exception as exc:  # noqa: BLE001 - any decoder failure is this video's error, reported
                error = f"{task.path}: NVDEC decoding failed ({exc})"
            stop = task.segment.stop_row
            self.events.put(Finished(task, end_row, stop is None or end_row < stop, error, time.perf_counter() - t0))

    def _decode(self, task: DecodeTask):
        """The segment's batches: FrameBatch with images (B, 3R, h, w) uint8 on the GPU (R regions per frame)."""
        import PyNvVideoCodec as nvc
        import torch
        import torch.nn.functional as F

        decoder = nvc.SimpleDecoder(str(task.path), gpu_id=torch.device(self.device).index or 0,
                                    use_device_memory=True, output_color_type=nvc.OutputColorType.RGBP)
        frames = len(decoder)
        fps = float(decoder.get_stream_metadata().average_fps or 0) or 1.0
        seg, stride = task.segment, task.stride
        first, end = seg.frames(stride)
        last = frames if end is None else min(frames, end)
        if first >= last:
            return
        if task.path not in self._turns:  # NVDEC's frames come as stored; regions are in the frame as shown
            self._turns[task.path] = shown_orientation(task.path)
        turn = self._turns[task.path]
        size = turn.stored_size(task.size)
        decoder.seek_to_index(first)
        row, at, boxes = seg.first_row, first, None
        while at < last:
            decoded = decoder.get_batch_frames(min(task.batch * stride, last - at))
            if not decoded:
                return
            kept = [torch.from_dlpack(f) for f in decoded[::stride]]
            boxes = boxes or _stored_boxes(task.rois, turn, *kept[0].shape[-2:])
            regions = [F.interpolate(torch.stack([f[:, y:y + h, x:x + w] for f in kept]).float(), size=size,
                                     mode="area") for x, y, w, h in boxes]
            images = turn.on_tensor(torch.cat(regions, dim=1).round_().clamp_(0, 255).to(torch.uint8)).contiguous()
            index = np.arange(at, at + len(decoded), stride)
            yield FrameBatch(row, index, task.index.seconds(index, fps) if task.index else index / fps, images)
            row, at = row + len(kept), at + len(decoded)


def _stored_boxes(rois, turn: Orientation, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """The regions (x, y, w, h) of the frame as shown (`turn`) -> those of the stored height x width frame holding
    them; VideoError for a region outside the shown frame."""
    return [turn.stored_box(check_shown_roi(r, width, height, turn), width, height) for r in rois]
