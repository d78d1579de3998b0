"""Short videos written with PyAV for tests: a bright square moving over a dark background."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def square_x(i: int, width: int) -> int:
    """Left edge of the square in frame i: sweeps right across the frame and wraps."""
    return (i * 3) % width


def write_square_clip(path: Path, frames: int, width: int = 96, height: int = 64, fps: int = 25) -> Path:
    """An MPEG-4 clip of `frames` frames with a 16x16 white square moving right."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            img = np.full((height, width, 3), 20, np.uint8)
            x = square_x(i, width)
            img[24:40, x:x + 16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_raw_stream_clip(path: Path, frames: int, width: int = 96, height: int = 64) -> Path:
    """A raw H.264 elementary stream (.h264, as cameras dump them) of the moving square at 25 frames/s: its frames
    carry no timestamps, and it has B-frames."""
    with av.open(str(path), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": "25", "bf": "2", "preset": "ultrafast", "tune": "zerolatency"}
        for i in range(frames):
            img = np.full((height, width, 3), 20, np.uint8)
            x = square_x(i, width)
            img[24:40, x:x + 16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_empty_clip(path: Path, width: int = 96, height: int = 64) -> Path:
    """A valid container whose video stream has no frames."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    return path


def write_size_switch_clip(path: Path, frames: int, sizes: tuple[tuple[int, int], ...] = ((96, 64), (48, 32))) -> Path:
    """An MPEG-TS stream of `frames` frames per size (w, h), one after the other: a recording whose resolution
    switches midway, as concatenated live-stream segments are."""
    parts = []
    for k, (width, height) in enumerate(sizes):
        part = path.with_name(f"{path.stem}.part{k}.ts")
        with av.open(str(part), "w", format="mpegts") as out:
            stream = out.add_stream("mpeg2video", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for i in range(frames):
                img = np.full((height, width, 3), 20, np.uint8)
                img[: height // 2, : width // 2] = 40 * k + i
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        parts.append(part.read_bytes())
        part.unlink()
    path.write_bytes(b"".join(parts))
    return path
