"""`export_model`: a checkpoint or zoo model written as a served ONNX graph or a Triton model repository."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..folded import FoldedModel
from .onnx_export import ExportError, check_export_options, export_onnx, input_spec
from .triton_repository import check_max_batch, write_triton_repository

FORMATS = ("onnx", "triton")


@dataclass(frozen=True)
class Exported:
    """What was written: `path` (the .onnx file or the Triton model folder), the model's `name`, its `model`,
    whether its weights are `trained` (a checkpoint) and the served graph's `input_format` and `precision`."""

    path: Path
    name: str
    model: FoldedModel
    trained: bool
    input_format: str
    precision: str

    def input_description(self) -> str:
        """One line saying what a client sends, e.g. "uint8 (B, 50, 50, 3), any B >= 1, 0..255 (normalised inside)"."""
        dtype, dims = input_spec(self.model, self.input_format)
        scale = "0..255" if dtype == "uint8" else "in [0, 1]"
        return f"{dtype} ({', '.join(['B', *map(str, dims)])}), any B >= 1, {scale} (normalised inside)"


def export_model(source: str | os.PathLike | FoldedModel, fmt: str, out_dir: str | os.PathLike, *,
                 fold: int | None = None, name: str | None = None, max_batch: int = 1024,
                 input_format: str = "float-nchw", precision: str = "fp32", instance_kind: str = "auto",
                 instance_count: int = 1, trust_code: bool = False) -> Exported:
    """Export `source` (a .safetensors checkpoint, a zoo model name with untrained weights, or a FoldedModel)
    into `out_dir`.

    fmt "onnx" writes OUT/<name>.onnx; "triton" writes OUT/<name>/{config.pbtxt,1/model.onnx}. The name
    defaults to the checkpoint's (checkpoint_name: data, model and fold) or "<model>-f<fold>". Every
    option is checked before the (slow) export starts. `trust_code` lets a checkpoint build its model with
    code it names (see load_checkpoint); only for trusted files.
    """
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    check_export_options(input_format, precision)
    check_max_batch(max_batch)
    if isinstance(source, FoldedModel):
        ident = source.identity
        label = ident.zoo or str((ident.source or {}).get("factory", "model")).rpartition(":")[2]
        model, default_name, trained = source.eval(), f"{label}-f{source.fold}", False
    elif Path(source).is_file() or Path(source).suffix == ".safetensors":  # a missing checkpoint says so
        ckpt = load_checkpoint(source, fold=fold, trust_code=trust_code)
        model, default_name, trained = ckpt.model, ckpt.name, True
    else:
        model = FoldedModel.from_zoo(str(source), fold or 1).eval()
        default_name, trained = f"{source}-f{model.fold}", False
    name = name or default_name
    if fmt == "onnx":
        written = export_onnx(model, Path(out_dir) / f"{name}.onnx", input_format=input_format, precision=precision,
                              name=name)
    else:
        written = write_triton_repository(model, out_dir, name, max_batch_size=max_batch, input_format=input_format,
                                          precision=precision, instance_kind=instance_kind,
                                          instance_count=instance_count)
    return Exported(written, name, model, trained, input_format, precision)
