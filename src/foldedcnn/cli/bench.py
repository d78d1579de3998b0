"""`foldedcnn bench`: throughput of zoo models across folds, batches, backends; CSV, Markdown, plots."""

from __future__ import annotations

import json
import shlex

from ._model import add_module_arguments, model_refs


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure images/s, utilization and speedup over f=1 across backends")
    p.add_argument("--models", nargs="+", default=None, help="zoo names (default: all, unless --module is given)")
    add_module_arguments(p, many=True)
    p.add_argument("--folds", nargs="+", type=int, default=[1, 2, 3, 4])
    p.add_argument("--batch", type=int, default=1024, help="images per batch")
    p.add_argument("--batch-sweep", nargs="+", type=int, default=None, help="several batch sizes (replaces --batch)")
    p.add_argument("--batch-for", nargs="+", default=[], metavar="MODEL=BATCH",
                   help="a smaller batch for some models, e.g. resnet18-cifar10=64")
    p.add_argument("--backends", nargs="+", default=["torch", "compile", "onnxruntime"])
    p.add_argument("--no-baseline", action="store_true", help="leave out eager PyTorch fp32 NCHW (torch-plain) at f=1")
    p.add_argument("--peer", action="store_true",
                   help="add the peer: plain torch.compile(mode='max-autotune') of the original network (f=1), "
                        "channels-last, in --dtype, kernel mode")
    p.add_argument("--backend-folds", nargs="+", default=[], metavar="BACKEND=F,F",
                   help="run a backend at only these folds, e.g. compile-max=1,4 (its compile is slow)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when present")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None,
                   help="default: float16 on cuda, float32 on cpu")
    p.add_argument("--mode", nargs="+", choices=["kernel", "end-to-end"], default=["kernel"])
    p.add_argument("--trials", type=int, default=3, help="interleaved trials; median and min-max reported")
    p.add_argument("--iterations", type=int, default=3, help="batches timed per trial")
    p.add_argument("--warmup", type=int, default=2, help="untimed batches per variant after the first call")
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="after S seconds, build no more torch.compile variants (compile, compile-max, peer); "
                        "measure and report the rest")
    p.add_argument("--keep-going", action="store_true",
                   help="a variant that fails to build or run is left out with its error printed; the rest are "
                        "measured and reported (default: the first failure ends the run)")
    p.add_argument("--reprobe", action="store_true",
                   help="measure the device peak now (best of 3) instead of using the cached probe")
    p.add_argument("--machine", default=None, help="results directory name (default: e.g. cpu-2core, GPU name)")
    p.add_argument("--out", default=None, help="output directory (default: benchmarks/results/<machine>)")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=run)


def command_line(args) -> str:
    """The canonical command that reproduces this run."""
    parts = ["foldedcnn", "bench", *(["--models", *args.models] if args.models else [])]
    for module in args.module:
        parts += ["--module", module]
    if args.module:
        parts += ["--input-shape", *map(str, args.input_shape or [])]
        parts += ["--module-kwargs", json.dumps(args.module_kwargs)] if args.module_kwargs else []
    parts += ["--folds", *map(str, args.folds)]
    parts += ["--batch-sweep", *map(str, args.batch_sweep)] if args.batch_sweep else ["--batch", str(args.batch)]
    if args.batch_for:
        parts += ["--batch-for", *args.batch_for]
    if args.backend_folds:
        parts += ["--backend-folds", *args.backend_folds]
    parts += ["--backends", *args.backends, "--device", args.device, "--dtype", args.dtype, "--mode", *args.mode,
              "--trials", str(args.trials), "--iterations", str(args.iterations), "--warmup", str(args.warmup)]
    parts += ["--time-limit", f"{args.time_limit:g}"] if args.time_limit is not None else []
    parts += ["--keep-going"] if args.keep_going else []
    parts += ["--no-baseline"] * args.no_baseline + ["--peer"] * args.peer + ["--reprobe"] * args.reprobe
    parts += ["--no-plots"] * args.no_plots
    return shlex.join(parts + (["--out", args.out] if args.out else []))


def run(args) -> int:
    import time
    from pathlib import Path

    from tqdm import tqdm

    from ..bench import derive_rows, machine_info, machine_slug, measure, write_report
    from ..bench.report import SUMMARY_COLUMNS, best_rows, measurement_warnings
    from ..bench.variants import parse_backend_folds, parse_batch_for, peak_probes, variant_grid
    from ..device import dtype_name, resolve_device, resolve_dtype
    from ..errors import FoldedCNNError
    from ..infer.backends import available_backends
    from ..models import list_models
    from ..tables import format_table

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    args.device, args.dtype = device.type, dtype_name(dtype)
    args.models = args.models or ([] if args.module else list_models())
    refs = model_refs(args.models, args)
    avail = available_backends(device, dtype)
    for b in args.backends:
        if b not in avail:
            raise FoldedCNNError(f"backend {b!r} cannot run on {args.device} {args.dtype}; "
                                 f"available: {', '.join(avail)}")
    if min(args.trials, args.iterations) < 1 or args.warmup < 0:
        raise FoldedCNNError("--trials and --iterations must be >= 1 and --warmup >= 0")
    groups = variant_grid(refs, args.folds, args.batch_sweep or [args.batch], args.backends, args.dtype, args.mode,
                          batch_for=parse_batch_for(args.batch_for, [r.label for r in refs]),
                          baseline=not args.no_baseline, peer=args.peer,
                          backend_folds=parse_backend_folds(args.backend_folds, args.backends))
    probes = peak_probes(args.device, [v.dtype for vs in groups.values() for v in vs], args.reprobe)

    total = sum(len(vs) for vs in groups.values()) * args.trials
    deadline = None if args.time_limit is None else time.monotonic() + args.time_limit
    rates = {}
    with tqdm(total=total, desc="bench", unit="step") as bar:
        for name, variants in groups.items():
            bar.set_postfix_str(name)
            rates.update(measure(variants, args.device, args.trials, args.iterations, args.warmup, bar.update,
                                 deadline, args.keep_going))
    rows = derive_rows(rates, probes, args.iterations)

    machine = machine_info(args.device)
    out = Path(args.out) if args.out else Path("benchmarks") / "results" / (args.machine or machine_slug(machine))
    paths = write_report(rows, out, command_line(args), machine, probes, plots=not args.no_plots)
    print(format_table(rows, SUMMARY_COLUMNS))
    print("\nbest per model:")
    print(format_table(best_rows(rows), SUMMARY_COLUMNS))
    for warning in measurement_warnings(rows):
        print(f"warning: {warning}")
    print(f"\nwrote {', '.join(str(p) for p in paths)}")
    return 0
