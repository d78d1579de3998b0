"""GPU: the triton backend's fused kernels against torch eager and torch.compile(mode="max-autotune").

For each model and fold, interleaved over trials, images/s of the network's forward at one batch:
  max-autotune    torch.compile(mode="max-autotune") of the same network, fp16 channels-last (the peer; built
                  at the folds of --max-autotune-folds, by default the original's alone)
  torch           eager, fp16 channels-last, cuDNN autotuning (the engine's "torch" backend)
  triton          the fused kernels on the folded, normalised input (the engine's buffer), the feature kernel
                  specialised to the network (the backend's default)
  triton-generic  the same with the generic feature kernel (one compiled kernel reading an op table)
  triton-u8       the fused kernels on raw uint8 (B, H, W, C) images, folded and normalised in the first kernel
  triton-PxWxS    with --tilings PxWxS ...: the specialised kernel on the folded input at BLOCK_P P, W warps and
                  S programs per multiprocessor (the default tiling is 64x4x2 up to 64 channels, 64x8x1 above)
Before timing, each variant's logits are compared with fp32 eager (relative error printed). CUDA
events; median (min-max) over trials of `--iterations` calls each. vs_peer: images/s over the median of
max-autotune at f = 1 of the same model, timed in the same run (issue #14's yardstick). Prints a
Markdown table and the machine; `--csv` also writes the rows.

    python benchmarks/triton_kernels.py --models noscope-coral game-lol-gold-int --folds 1 4 --batch 1024
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from foldedcnn.device import device_name, resolve_dtype
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine
from foldedcnn.infer.backends import create_backend
from foldedcnn.infer.backends.triton import TritonBackend
from foldedcnn.infer.fused._run import Tiling
from foldedcnn.tables import markdown_table

VARIANTS = ("max-autotune", "torch", "triton", "triton-generic", "triton-u8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["noscope-coral", "game-lol-gold-int"])
    p.add_argument("--folds", nargs="+", type=int, default=[1, 4])
    p.add_argument("--align", type=int, default=8, help="round folded widths up to a multiple (tensor cores)")
    p.add_argument("--batch", type=int, default=1024, help="images per call")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--tilings", nargs="+", default=[], type=_tiling_name, metavar="PxWxS",
                   help="also time the specialised kernel at these BLOCK_P x warps x programs per SM (e.g. 128x4x2)")
    p.add_argument("--max-autotune-folds", nargs="+", type=int, default=[1],
                   help="folds at which the max-autotune variant is built (each compile takes tens of seconds)")
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--scratch-budget", type=int, help="scratch elements per program of the feature kernel (sets the "
                   "band height: more means fewer halo rows recomputed, more L2 in use); default: Tiling's")
    p.add_argument("--csv", type=Path, help="also write the rows here")
    return p.parse_args(argv)


TILING = re.compile(r"(\d+)x([48])x([1-8])")


def _tiling_name(text: str) -> str:
    match = TILING.fullmatch(text)
    if not match or int(match[1]) not in (16, 32, 64, 128, 256):
        raise argparse.ArgumentTypeError(f"{text!r}: expected BLOCK_PxWARPSxPROGRAMS_PER_SM, BLOCK_P a power of 2 "
                                         "from 16 to 256, 4 or 8 warps, 1 to 8 programs per SM, e.g. 128x4x2")
    return text


def tiling_of(variant: str, tiling: Tiling, sms: int) -> Tiling | None:
    """The tiling of a variant "triton-PxWxS" on a GPU of `sms` multiprocessors, or of "triton-generic" (the generic
    feature kernel); None for any other variant."""
    if variant == "triton-generic":
        return replace(tiling, unrolled=False)
    match = TILING.fullmatch(variant.removeprefix("triton-")) if variant.startswith("triton-") else None
    if match is None:
        return None
    return replace(tiling, block_p=int(match[1]), num_warps=int(match[2]), programs=int(match[3]) * sms)


def seconds_per_call(run: Callable[[], object], iterations: int) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iterations):
        run()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / iterations


def variants_for(model: FoldedModel, names: list[str], dtype: torch.dtype, batch: int, tiling: Tiling
                 ) -> tuple[dict[str, Callable[[], torch.Tensor]], dict[str, float], torch.Tensor]:
    """Callables returning folded logits of one random batch, their setup seconds, and fp32 eager's logits.

    Every variant sees the same images: the folded ones are what the engine's own buffer holds.
    """
    cuda = torch.device("cuda")
    sms = torch.cuda.get_device_properties(cuda).multi_processor_count
    c, h, w = model.input_shape
    engine = Engine(model, backend="triton", device=cuda, dtype=dtype, max_batch=batch)
    if engine.backend_name != "triton":
        raise SystemExit(f"the triton backend fell back ({engine.backend.fallback_reason})")
    fused = TritonBackend(model, cuda, dtype, tiling)
    runner = fused.runner
    print(f"{runner.program.describe()}; {runner.bands.shape[0]} row bands, {runner.programs} programs "
          f"x {runner.num_warps} warps", flush=True)
    images = torch.randint(0, 256, (batch, h, w, c), dtype=torch.uint8, device=cuda)
    folded = engine.prepare(images).images.clone()
    runs, setup = {}, {}
    for name in names:
        t0 = time.perf_counter()
        if name == "max-autotune":
            compiled = torch.compile(create_backend("torch", model, cuda, dtype).net, mode="max-autotune")
            runs[name] = lambda compiled=compiled: compiled(folded)
        elif name == "torch":
            eager = create_backend("torch", model, cuda, dtype)
            runs[name] = lambda eager=eager: eager.forward_folded(folded)
        elif name == "triton":
            runs[name] = lambda: fused.forward_folded(folded)
        elif (tiled := tiling_of(name, tiling, sms)) is not None:
            other = TritonBackend(model, cuda, dtype, tiled)  # built only when asked for
            runs[name] = lambda other=other: other.forward_folded(folded)
        else:
            runs[name] = lambda: fused.forward_images(images, engine.normalization)
        with torch.inference_mode():
            runs[name]()
        torch.cuda.synchronize()
        setup[name] = time.perf_counter() - t0
    with torch.inference_mode():
        reference = create_backend("torch", model, cuda, torch.float32).forward_folded(folded.float())
    return runs, setup, reference


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.float() - ref).norm() / ref.norm()).item()


def add_vs_peer(rows: list[dict]) -> None:
    """Each row's images/s over its model's max-autotune f = 1 median (empty where that was not timed)."""
    peer = {r["model"]: r["images_per_s"] for r in rows if r["variant"] == "max-autotune" and r["fold"] == 1}
    for r in rows:
        r["vs_peer"] = round(r["images_per_s"] / peer[r["model"]], 2) if r["model"] in peer else ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("triton_kernels.py needs a CUDA GPU (the fused kernels compile for CUDA)", file=sys.stderr)
        return 2
    import triton

    from foldedcnn.models import create_model

    dtype = resolve_dtype(args.dtype, torch.device("cuda"))
    tiling = Tiling() if args.scratch_budget is None else Tiling(scratch_budget=args.scratch_budget)
    print(f"machine: {device_name('cuda')}; torch {torch.__version__}, triton {triton.__version__}; "
          f"{args.dtype}, batch {args.batch} images")
    rows = []
    for name in args.models:
        for f in args.folds:
            net = create_model(name, f, align=args.align if f > 1 else 1)
            model = FoldedModel(net).eval()
            names = [v for v in args.variants if v != "max-autotune" or f in args.max_autotune_folds]
            names += [f"triton-{t}" for t in args.tilings]
            runs, setup, reference = variants_for(model, names, dtype, args.batch, tiling)
            with torch.inference_mode():
                errors = {v: relative_error(run(), reference) for v, run in runs.items()}
            times: dict[str, list[float]] = {v: [] for v in runs}
            with torch.inference_mode():
                for run in runs.values():
                    for _ in range(args.warmup):
                        run()
                for _ in range(args.trials):
                    for v, run in runs.items():
                        times[v].append(seconds_per_call(run, args.iterations))
            for v in runs:
                ips = [args.batch / s for s in times[v]]
                rows.append({"model": name, "fold": f, "variant": v, "images_per_s": round(statistics.median(ips)),
                             "min": round(min(ips)), "max": round(max(ips)), "setup_s": round(setup[v], 1),
                             "rel_error": errors[v]})
            print(markdown_table(rows[-len(runs):]), flush=True)
    add_vs_peer(rows)
    print(markdown_table(rows))
    if args.csv:
        with args.csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
