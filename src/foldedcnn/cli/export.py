"""`foldedcnn export`: a checkpoint, zoo model or your own model as a served ONNX graph or a Triton model repository."""

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
    p.add_argument("--name", default=None,
                   help="model name (default: from the checkpoint, <data>-<model>-f<fold>, or <model>-f<fold>)")
    p.add_argument("--input", dest="input_format", choices=["float-nchw", "uint8-nhwc"], default="float-nchw",
                   help="what clients send: float32 (B, C, H, W) in [0, 1], or uint8 frames (B, H, W, C); "
                        "normalisation is inside the graph either way (default float-nchw)")
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32",
                   help="arithmetic inside the graph; fp16 for GPUs (inputs and logits stay as above)")
    p.add_argument("--max-batch", type=int, default=1024, help="Triton max_batch_size, >= 1 (default 1024)")
    p.add_argument("--instance-kind", choices=["auto", "gpu", "cpu"], default="auto",
                   help="Triton instance_group kind (auto: Triton's default, one per GPU or one on CPU)")
    p.add_argument("--instances", type=int, default=1, help="Triton instances of the model per group (default 1)")
    p.add_argument("--trust-code", action="store_true",
                   help="allow a checkpoint whose model is built by code it names; only for trusted files")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import FoldedCNNError
    from ..infer import export_model

    if (args.source is None) == (args.module is None):
        raise FoldedCNNError("give a checkpoint or zoo name, or --module (not both)")
    source = args.source
    if args.module:
        (ref,) = model_refs([], args)
        source = ref.build(args.fold or 1).eval()
    done = export_model(source, args.format, args.out, fold=args.fold, name=args.name,
                        max_batch=args.max_batch, input_format=args.input_format, precision=args.precision,
                        instance_kind=args.instance_kind, instance_count=args.instances, trust_code=args.trust_code)
    if not done.trained:
        print(f"note: {done.name} is an architecture with untrained weights (export a checkpoint for real use)")
    print(f"wrote {done.path} (model {done.name}, fold {done.model.fold}, {done.precision})")
    print(f"input  images: {done.input_description()}")
    print(f"output logits: float32 (B, {done.model.num_classes}), classes {done.model.identity.resolved_class_names}")
    return 0
