"""Region conversion per pixel format: what `foldedcnn run` pays per frame to turn a decoded frame's region into
the model's input, against converting the whole frame first.

On one noisy 1920x1080 frame in each pixel format, interleaved over --repeats, the 140x140 region at (480, 260)
scaled to 50x50:
  region only   data._region.region_resized (the job's path: the region's planes cut out, then one FFmpeg pass)
  whole frame   the frame converted to RGB whole by the same scaler (full_rgb), the region cropped and resized
                with OpenCV (the path of formats whose planes cannot be cut; the peer)
Reports microseconds per frame, median (min-max), and their ratio. Writes pixel_formats.md to --out.

    python benchmarks/pixel_formats.py --out benchmarks/results/cpu-2core
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from foldedcnn.bench.machine import machine_info  # noqa: E402
from foldedcnn.data._region import full_rgb, region_resized, resize_rgb  # noqa: E402

FORMATS = ("yuv420p", "nv12", "yuv422p", "yuyv422", "uyvy422", "yuv420p10le", "p010le", "yuv444p12le", "x2rgb10le")
ROI, SIZE = (480, 260, 140, 140), (50, 50)


def whole_frame(frame) -> np.ndarray:
    x, y, w, h = ROI
    return resize_rgb(full_rgb(frame)[y:y + h, x:x + w], SIZE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20, help="conversions per repeat and way")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    noise = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    base = av.VideoFrame.from_ndarray(noise, format="rgb24")
    rows = []
    for fmt in FORMATS:
        frame = base.reformat(format=fmt)
        ways = {"region only": lambda frame=frame: region_resized(frame, ROI, SIZE), "whole frame":
                lambda frame=frame: whole_frame(frame)}
        us: dict[str, list[float]] = {w: [] for w in ways}
        for _ in range(args.repeats):
            for way, run in ways.items():
                t = time.perf_counter()
                for _ in range(args.calls):
                    run()
                us[way].append((time.perf_counter() - t) / args.calls * 1e6)
        med = {w: statistics.median(v) for w, v in us.items()}
        cell = {w: f"{med[w]:,.0f} ({min(v):,.0f}-{max(v):,.0f})" for w, v in us.items()}
        rows.append(f"| {fmt} | {cell['region only']} | {cell['whole frame']} | "
                    f"{med['whole frame'] / med['region only']:.1f}x |")
    m = machine_info("cpu")
    out = ["# Region conversion per pixel format (1920x1080 frame, region 140x140 -> 50x50)", "",
           f"Machine: {m['cpu']}, one thread, PyAV {av.__version__}. Microseconds per frame, median (min-max) of "
           f"{args.repeats} interleaved repeats of {args.calls} conversions. Formats whose samples share bytes or "
           "words (yuyv422, x2rgb10le) are converted whole on both paths.", "",
           "| pixel format | region only us | whole frame us | whole / region |", "|---|---|---|---|", *rows, "",
           f"Command: `python benchmarks/pixel_formats.py --out {args.out}`"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pixel_formats.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
