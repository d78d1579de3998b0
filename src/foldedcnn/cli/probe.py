"""`foldedcnn probe`: measure peak FLOP/s and bandwidth of a device and cache them."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("probe", help="measure peak matmul FLOP/s and copy bandwidth (cached as JSON)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    p.add_argument("--reps", type=int, default=10, help="timed repetitions (median reported)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.probe import probe_device, save_probe
    from ..analysis.roofline import ridge_point

    r = probe_device(args.device, args.dtype, reps=args.reps)
    path = save_probe(r)
    print(f"device     {r.device_name} ({r.device}, {r.threads} threads, torch {r.torch_version})")
    print(f"dtype      {r.dtype}")
    print(f"matmul     {r.peak_flops / 1e9:,.1f} GFLOP/s  ({r.matmul_size}x{r.matmul_size}, median of {args.reps})")
    print(f"bandwidth  {r.bandwidth / 1e9:,.1f} GB/s  (copy of {r.copy_bytes / 2**20:.0f} MiB, read + write)")
    print(f"ridge      {ridge_point(r.peak_flops, r.bandwidth):,.1f} FLOP/byte")
    print(f"saved to   {path}")
    return 0
