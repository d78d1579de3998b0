"""GPU: where the time of the end-to-end path and of the fused Triton kernels goes (a diagnosis, not a goal check).

End-to-end parts, one model at one batch (default noscope-coral f = 4, batch 1024, fp16, backend torch):
  stage copy      host uint8 (B, H, W, C) -> pinned staging buffer, on the CPU (torch's copy_, its threads),
                  and the same split over --copy-threads Python threads (numpy.copyto releases the GIL)
  upload pinned   pinned -> device, non_blocking, then synchronize
  upload pageable host (not pinned) -> device (CUDA stages it itself)
  kernel          the backend's forward on an already folded, normalised device buffer
  stream          Engine.predict_stream over the host batch (what `bench --mode end-to-end` times), and over
                  the same batch in pinned memory (uploaded without the staging copy)
Fused Triton kernels, per model and fold: the feature kernel and the classifier timed apart, at the default
Tiling and at the Tiling variants of --tilings (block_p/block_k/scratch budget/programs per SM).
Each figure: median (min-max) over --trials of --iterations calls. Prints Markdown tables; --out writes them.

    python benchmarks/gpu_parts.py --out parts.md
"""

from __future__ import annotations

import argparse
import collections
import itertools
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from foldedcnn.device import device_name
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine
from foldedcnn.infer.fused import fused_program
from foldedcnn.infer.fused._run import FusedRunner, Tiling
from foldedcnn.infer.fused._schedule import choose_band_rows
from foldedcnn.tables import markdown_table

#: name -> Tiling fields changed from the default (programs_per_sm: a multiple of the default grid)
TILINGS = {
    "default": {},
    "block_p 32": {"block_p": 32},
    "block_p 128": {"block_p": 128},
    "block_k 16": {"block_k": 16},
    "block_k 64": {"block_k": 64},
    "scratch 8k": {"scratch_budget": 8192},
    "scratch 128k": {"scratch_budget": 131072},
    "programs x2": {"programs_x": 2},
    "programs x4": {"programs_x": 4},
}


FUSED_COLUMNS = ["model", "tiling", "band_rows", "programs", "features", "classifier", "both"]


def timed(run, iterations: int, trials: int, sync) -> list[float]:
    """Seconds per call of `run`, one figure per trial (after one untimed call)."""
    run()
    sync()
    out = []
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(iterations):
            run()
        sync()
        out.append((time.perf_counter() - t0) / iterations)
    return out


def fmt_rate(seconds: list[float], amount: float, unit: str) -> str:
    rates = [amount / s for s in seconds]
    return f"{statistics.median(rates):,.3g} ({min(rates):,.3g}-{max(rates):,.3g}) {unit}"


def end_to_end_parts(args, dev: torch.device, sync) -> list[dict]:
    model = FoldedModel.from_zoo(args.model, args.fold).eval()
    c, h, w = model.input_shape
    b = args.batch
    engine = Engine(model, backend=args.backend, device=dev, max_batch=b)
    host = torch.randint(0, 256, (b, h, w, c), dtype=torch.uint8)
    pinned = torch.empty_like(host, pin_memory=dev.type == "cuda")
    on_dev = torch.empty_like(host, device=dev)
    mb = host.numel() / 1e9  # GB per batch
    src, dst = host.numpy(), pinned.numpy()
    pool = ThreadPoolExecutor(args.copy_threads)
    parts = np.array_split(np.arange(b), args.copy_threads)

    def threaded_copy():
        list(pool.map(lambda idx: np.copyto(dst[idx[0]:idx[-1] + 1], src[idx[0]:idx[-1] + 1]), parts))

    rows = []
    it, tr = args.iterations, args.trials
    threads = torch.get_num_threads()
    rows.append({"part": f"stage copy, torch copy_ ({threads} threads)",
                 "rate": fmt_rate(timed(lambda: pinned.copy_(host), it, tr, sync), mb, "GB/s")})
    torch.set_num_threads(1)
    rows.append({"part": "stage copy, torch copy_ (1 thread)",
                 "rate": fmt_rate(timed(lambda: pinned.copy_(host), it, tr, sync), mb, "GB/s")})
    torch.set_num_threads(threads)
    rows.append({"part": f"stage copy, {args.copy_threads} Python threads",
                 "rate": fmt_rate(timed(threaded_copy, it, tr, sync), mb, "GB/s")})
    rows.append({"part": "upload pinned", "rate": fmt_rate(
        timed(lambda: on_dev.copy_(pinned, non_blocking=True), it, tr, sync), mb, "GB/s")})
    rows.append({"part": "upload pageable", "rate": fmt_rate(timed(lambda: on_dev.copy_(host), it, tr, sync), mb,
                                                             "GB/s")})
    folded = engine.prepare(torch.rand(b, c, h, w)).images
    with torch.inference_mode():
        rows.append({"part": f"kernel ({engine.backend_name})", "rate": fmt_rate(
            timed(lambda: engine.backend.forward_folded(folded), it, tr, sync), b / 1e6, "M images/s")})
    pinned.copy_(host)
    for name, batch in (("stream, host batch", host), ("stream, pinned batch", pinned)):
        rows.append({"part": name, "rate": fmt_rate(timed(
            lambda batch=batch: collections.deque(engine.predict_stream(itertools.repeat(batch, it)), maxlen=0),
            1, tr, sync), it * b / 1e6, "M images/s")})
    pool.shutdown()
    return [{"model": f"{args.model} f={args.fold} batch {b}", **r} for r in rows]


def triton_parts(args, dev: torch.device, dtype: torch.dtype, sync) -> list[dict]:
    rows = []
    for name, fold in itertools.product(args.triton_models, args.triton_folds):
        model = FoldedModel.from_zoo(name, fold).eval()
        c, h, w = model.input_shape
        program = fused_program(model.network, (fold * c, h, w))
        groups = args.batch // fold
        x = torch.randn(groups, fold * c, h, w, device=dev).to(dtype).contiguous(memory_format=torch.channels_last)
        for label in args.tilings:
            change = dict(TILINGS[label])
            times = change.pop("programs_x", None)
            runner = FusedRunner(program, dev, dtype, replace(Tiling(), **change))  # one compile per tiling
            if times:
                runner.programs *= times
            feats = runner._features(x, groups, None)
            try:
                t_feat = timed(lambda runner=runner, x=x, groups=groups: runner._features(x, groups, None),
                               args.iterations, args.trials, sync)
                t_cls = timed(lambda runner=runner, feats=feats: runner._classifier(feats), args.iterations,
                              args.trials, sync)
            except Exception as exc:  # a tiling the compiler refuses: say so, try the next
                rows.append({"model": f"{name} f={fold}", "tiling": label, "features": f"failed: {exc}"[:120]})
                continue
            total = [a + b for a, b in zip(t_feat, t_cls, strict=True)]
            band_rows = runner.tiling.band_rows or choose_band_rows(program, runner.tiling.scratch_budget)
            rows.append({"model": f"{name} f={fold}", "tiling": label, "band_rows": band_rows,
                         "programs": runner.programs, "features": fmt_rate(t_feat, args.batch / 1e6, "M/s"),
                         "classifier": fmt_rate(t_cls, args.batch / 1e6, "M/s"),
                         "both": fmt_rate(total, args.batch / 1e6, "M images/s")})
            print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="noscope-coral")
    p.add_argument("--fold", type=int, default=4)
    p.add_argument("--backend", default="torch")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--copy-threads", type=int, default=8)
    p.add_argument("--triton-models", nargs="+", default=["noscope-coral", "game-lol-gold-int"])
    p.add_argument("--triton-folds", nargs="+", type=int, default=[4])
    p.add_argument("--tilings", nargs="+", default=list(TILINGS), choices=list(TILINGS))
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                   help="cpu: the script's plumbing at tiny size (Triton's interpreter, TRITON_INTERPRET=1)")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_parts.py needs a CUDA GPU (--device cpu: the plumbing only)", file=sys.stderr)
        return 2
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    e2e = end_to_end_parts(args, dev, sync)
    print(markdown_table(e2e), flush=True)
    fused = triton_parts(args, dev, torch.float16 if dev.type == "cuda" else torch.float32, sync)
    text = (f"# Parts of the GPU paths ({device_name(dev)}, torch {torch.__version__})\n\n"
            f"Command: `python benchmarks/gpu_parts.py {' '.join(sys.argv[1:])}`\n\n"
            f"{markdown_table(e2e)}\n\n{markdown_table(fused, FUSED_COLUMNS)}\n")
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
