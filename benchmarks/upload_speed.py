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
from collections.abc import Callable

import torch
from gpu_parts import fmt_rate, timed

from foldedcnn.device import device_name
from foldedcnn.infer._buffers import StreamSlots
from foldedcnn.models import get_spec, list_models


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
    sync = torch.cuda.synchronize if cuda else (lambda: None)  # each trial waits for the GPU at its end
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
        seconds = {name: timed(run, args.iterations, args.repeats, sync) for name, run in runs.items()}
        cells = [fmt_rate(seconds[name], mb / 1e3, "GB/s") if name in seconds else "-"
                 for name in ("host copy", "upload", "both")]
        images = fmt_rate(seconds["both"], args.batch, "images/s") if cuda else "-"
        print(f"{h}x{w}x{c}, {mb:.1f} MB: host copy {cells[0]}; upload {cells[1]}; both {cells[2]} = {images}")


if __name__ == "__main__":
    main()
