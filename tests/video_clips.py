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


def write_empty_clip(path: Path, width: int = 96, height: int = 64) -> Path:
    """A valid container whose video stream has no frames."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    return path
