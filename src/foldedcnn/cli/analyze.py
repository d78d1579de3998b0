"""`foldedcnn analyze`: FLOPs, params, arithmetic intensity and roofline per model and fold."""

from __future__ import annotations

import json
import sys

from ._model import add_module_arguments, model_refs
from ._width_args import add_width_args


def register(sub) -> None:
    p = sub.add_parser("analyze", help="FLOPs, params, arithmetic intensity (and roofline) per fold")
    p.add_argument("models", nargs="*", metavar="MODEL", help="zoo names (see `foldedcnn models`)")
    add_module_arguments(p, many=True)
    p.add_argument("--fold", nargs="+", type=int, default=[1, 2, 3, 4], help="fold factors (default 1 2 3 4)")
    p.add_argument("--batch", type=int, default=1024, help="images per batch for intensity (default 1024)")
    p.add_argument("--bytes-per-element", type=float, default=2, help="2 for FP16 (default), 4 for FP32")
    add_width_args(p)
    p.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="use this device's cached probe for the roofline (default: any probe found)")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per (model, fold)")
    p.add_argument("--plot", metavar="PNG", help="plot intensity against batch size per fold")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.report import analysis_rows, analyze_all, find_probe, missing_probe_note, plot_intensity
    from ..errors import FoldedCNNError

    if args.batch < 1:
        raise FoldedCNNError(f"--batch must be >= 1, got {args.batch}")
    refs = model_refs(args.models, args)
    if not refs:
        raise FoldedCNNError("name a zoo model (see `foldedcnn models`) or your own with --module")
    probe = find_probe(args.device, args.bytes_per_element)
    names = [r.label for r in refs]
    analyses = analyze_all(refs, args.fold, args.align, skipped=lambda note: print(note, file=sys.stderr),
                           min_block=args.min_block)
    rows = analysis_rows(analyses, names, args.fold, args.batch, args.bytes_per_element, probe)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        from ..tables import format_table

        for model in [n for n in names if any(r["model"] == n for r in rows)]:
            print(f"\n{model}  (batch {args.batch} images, {args.bytes_per_element:g} bytes/element)")
            cols = ["fold", "params", "flops_per_input", "flops_per_image", "intensity", "intensity_gain",
                    "intensity_limit"]
            if probe is not None:
                cols += ["roofline_images_per_s", "roofline_binding"]
            print(format_table([r for r in rows if r["model"] == model], cols))
        if probe is None:
            print(f"\n({missing_probe_note(args.device, args.bytes_per_element)})")
        else:
            print(f"\nroofline from probe of {probe.device_name} ({probe.dtype})")
    if args.plot:
        path = plot_intensity(analyses, names, args.fold, args.bytes_per_element, args.plot)
        print(f"plot written to {path}")
    return 0
