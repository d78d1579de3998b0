"""`foldedcnn export`: a checkpoint or zoo model as ONNX (fold and unfold inside) or a Triton repository."""

from __future__ import annotations

from ._model import add_module_arguments, model_refs


def register(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint or zoo model to ONNX or a Triton model repository")
    p.add_argument("source", metavar="CKPT_OR_MODEL", nargs="?", help="a .safetensors checkpoint or a zoo model name")
    p.add_argument("--module", metavar="MODULE:FACTORY", help="instead of CKPT_OR_MODEL: your own model (untrained)")
    add_module_arguments(p)
    p.add_argument("--format", choices=["onnx", "triton"], required=True)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--fold", type=int, default=None, help="fold of a zoo model (default 1); must match a checkpoint's")
    p.add_argument("--name", default=None, help="model name (default: <model>-f<fold>)")
    p.add_argument("--max-batch", type=int, default=1024, help="Triton max_batch_size (rounded up to a multiple of f)")
    p.add_argument("--trust-code", action="store_true",
                   help="allow a checkpoint whose model is built by code it names; only for trusted files")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..checkpoint import load_checkpoint
    from ..errors import FoldedCNNError
    from ..infer.onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx
    from ..infer.triton_repository import write_triton_repository

    if (args.source is None) == (args.module is None):
        raise FoldedCNNError("give a checkpoint or zoo name, or --module (not both)")
    source = Path(args.source or "")
    if args.source and source.is_file():
        ckpt = load_checkpoint(source, fold=args.fold, trust_code=args.trust_code)
        model, stem = ckpt.model, source.stem
    else:
        (ref,) = model_refs([args.source] if args.source else [], args)
        model, stem = ref.build(args.fold or 1).eval(), ref.name.rpartition(":")[2]
        print(f"note: {ref.label} is an architecture with untrained weights (export a checkpoint for real use)")
    name = args.name or f"{stem}-f{model.fold}"
    if args.format == "onnx":
        path = export_onnx(model, Path(args.out) / f"{name}.onnx", model.normalization)
    else:
        path = write_triton_repository(model, args.out, name, args.max_batch, model.normalization)
    c, h, w = model.input_shape
    print(f"wrote {path}")
    print(f"input  {INPUT_NAME}: float32 (B, {c}, {h}, {w}), B a multiple of {model.fold}, "
          f"normalised (x / 255 - mean) / std with {model.normalization}")
    print(f"output {OUTPUT_NAME}: float32 (B, {model.num_classes})")
    return 0
