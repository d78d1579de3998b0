"""The ceiling the host puts on end-to-end inference: how fast a batch of host uint8 images (B, H, W, C) reaches
the GPU through the engine's own pipeline memory (infer._buffers.StreamSlots), with no model at all.

Per input shape of the zoo, batch --batch, the median (min-max) over --repeats of --iterations batches:
  host copy   the batch copied into pinned memory on the host (what Slot.upload does first for unpinned input)
  upload      pinned memory -> GPU on the upload stream, waited for
  both        Slot.upload as the engine calls it (the host copy, then the upload), batch after batch
in GB/s and images/s. `foldedcnn bench --mode end-to-end` cannot pass `both`; a kernel-mode rate above it means
the end-to-end goal (>= 0.9 x kernel) is out of reach for that model whatever the engine does. On a CPU only the
host copy is timed (into ordinary memory).

    python benchmarks/upload_speed.py                 # on the GPU machine
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from foldedcnn.device import device_name
from foldedcnn.infer._buffers import StreamSlots
from foldedcnn.models import get_spec, list_models


def rate(run: Callable[[], None], iterations: int, repeats: int) -> list[float]:
    """Batches per second of `run` over `repeats` trials of `iterations` calls (each trial waits for the GPU at its
    end), after one warm-up call."""
    def done() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    run()
    done()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iterations):
            run()
        done()
        out.append(iterations / (time.perf_counter() - t0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    shapes = sorted({get_spec(m).input_shape for m in list_models() if not m.startswith("resnet")})
    print(f"{device_name('cuda' if cuda else 'cpu')}; batch {args.batch} uint8 images (B, H, W, C); median (min-max) "
          f"of {args.repeats} x {args.iterations} batches")
    print(f"{'input':>12} {'MB':>6}  {'host copy GB/s':>18}  {'upload GB/s':>18}  {'both GB/s':>18}  "
          f"{'both images/s':>14}")
    for c, h, w in shapes:
        host = torch.randint(0, 256, (args.batch, h, w, c), dtype=torch.uint8)
        mb = host.numel() / 1e6
        runs: dict[str, Callable[[], None]] = {}
        if cuda:
            slots = StreamSlots(args.batch, (h, w, c), torch.uint8, 2, torch.device("cuda"))
            slot = slots.slots[0]
            runs["host copy"] = lambda slot=slot, host=host: slot.host_images.copy_(host)

            def upload(slot=slot, slots=slots) -> None:
                with torch.cuda.stream(slots.upload_stream):
                    slot.device_images.copy_(slot.host_images, non_blocking=True)
                slots.upload_stream.synchronize()
            runs["upload"] = upload

            def both(slots=slots, host=host) -> None:  # two slots in turn: a host copy overlaps the other's upload
                slot = slots.next_slot()
                slot.uploaded.synchronize()  # its last upload has left its pinned memory
                slot.upload(host, slots.upload_stream)
            runs["both"] = both
        else:
            into = torch.empty_like(host)
            runs["host copy"] = lambda into=into, host=host: into.copy_(host)
        cells = []
        for name in ("host copy", "upload", "both"):
            if name not in runs:
                cells.append(f"{'-':>18}")
                continue
            r = [b * mb / 1e3 for b in rate(runs[name], args.iterations, args.repeats)]
            cells.append(f"{statistics.median(r):>7.1f} ({min(r):.1f}-{max(r):.1f})".rjust(18))
        images = "-"
        if cuda:
            torch.cuda.synchronize()
            images = f"{statistics.median(rate(runs['both'], args.iterations, args.repeats)) * args.batch:,.0f}"
        print(f"{f'{c}x{h}x{w}':>12} {mb:>6.1f}  " + "  ".join(cells) + f"  {images:>14}")


if __name__ == "__main__":
    main()
