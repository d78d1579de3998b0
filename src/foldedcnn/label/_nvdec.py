"""GPU decoding on NVDEC (PyNvVideoCodec), and the choice between it and the CPU decoder pool.

`choose_decoder` picks per video: `--decoder cpu` never touches the GPU; `gpu` needs a CUDA device
and PyNvVideoCodec (`pip install "foldedcnn[nvdec]"`) and is refused with one clear error without
them, and sends a video whose codec NVDEC does not decode (msmpeg4, ffv1, ...) to the CPU pool with a
note in summary.json; `auto` (the default) takes the CPU pool, the faster of the two as measured: on a
16-core H200 machine, 16 H.264 videos, NVDEC labelled 878 frames/s and the CPU pool 3,850
(benchmarks/results/gpu-h200/video-h264).

`NvdecDecoder` decodes the segments given to it in a background thread of the Engine's process:
frames come out of NVDEC as planar RGB on the GPU, the region is cut and resized there (area
averaging, like the CPU path's INTER_AREA for downscaling; pixel values differ slightly from the CPU
path: another YUV->RGB conversion and resampler), and batches go to the Engine without a host copy.
It reads frames by index (`get_batch_frames_by_index`), one segment after another in one thread: the
likely reason it is slow (not yet profiled); sequential reads and one decoder per NVDEC engine are next.
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from ..errors import FoldedCNNError
from ._decode_pool import Decoded, DecodeTask, Finished
from .frame_source import FrameBatch

# Codecs NVDEC decodes on every GPU since Turing (NVIDIA Video Codec SDK support matrix), by FFmpeg name.
NVDEC_CODECS = frozenset({"h264", "hevc", "av1", "vp8", "vp9", "mpeg1video", "mpeg2video", "mpeg4", "vc1"})
DECODERS = ("auto", "cpu", "gpu")
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
    if requested == "gpu" and unavailable:
        raise FoldedCNNError(f"--decoder gpu: NVDEC cannot be used here ({unavailable}); use --decoder cpu or auto")


def choose_decoder(requested: str, codec: str, unavailable: str | None) -> tuple[str, str | None]:
    """"gpu" or "cpu" for a video of `codec` (after check_decoder_request), and a note saying why it is not
    where `requested` would put it. "auto" is "cpu": the CPU pool is the faster (module docstring)."""
    if requested != "gpu" or unavailable:
        return "cpu", None
    if codec in NVDEC_CODECS:
        return "gpu", None
    return "cpu", f"codec {codec} is not decoded by NVDEC; decoded on the CPU"


class NvdecDecoder:
    """Decode `tasks` on NVDEC in a background thread; `events` receives Decoded and Finished in order."""

    def __init__(self, tasks: list[DecodeTask], device: str = "cuda") -> None:
        self.tasks, self.device = tasks, device
        self.events: queue.Queue = queue.Queue(maxsize=4)
        self.pending = len(tasks)
        self._thread = threading.Thread(target=self._run, name="nvdec", daemon=True)
        if tasks:
            self._thread.start()

    def _run(self) -> None:
        for task in self.tasks:
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
        import PyNvVideoCodec as nvc
        import torch
        import torch.nn.functional as F

        decoder = nvc.SimpleDecoder(str(task.path), gpu_id=torch.device(self.device).index or 0,
                                    use_device_memory=True, output_color_type=nvc.OutputColorType.RGBP)
        frames = len(decoder)
        fps = float(decoder.get_stream_metadata().average_fps or 0) or 1.0
        x, y, w, h = task.roi
        seg, stride = task.segment, task.stride
        last = frames if seg.stop_row is None else min(frames, (seg.stop_row - 1) * stride + 1)
        wanted = list(range(seg.first_row * stride, last, stride))
        for i in range(0, len(wanted), task.batch):
            index = wanted[i:i + task.batch]
            rgb = torch.stack([torch.from_dlpack(f) for f in decoder.get_batch_frames_by_index(index)])
            region = rgb[:, :, y:y + h, x:x + w].float()
            images = F.interpolate(region, size=task.size, mode="area").round_().clamp_(0, 255).to(torch.uint8)
            yield FrameBatch(seg.first_row + i, np.asarray(index), np.asarray(index) / fps, images)
