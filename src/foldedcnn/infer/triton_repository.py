"""A Triton Inference Server model repository around the served ONNX graph.

    DIR/<name>/config.pbtxt     platform onnxruntime_onnx, max_batch_size, dynamic batching, instance group
    DIR/<name>/1/model.onnx     images (B, C, H, W) float32 in [0, 1] or (B, H, W, C) uint8 -> logits (B, K)
    DIR/<name>/labels.txt       the class names, one per line in logit order: the output's label_filename, so
                                Triton's classification extension answers with names ("0.93:7:car")

The graph normalises and pads to a multiple of f inside, so the dynamic batcher may form any batch
from 1 to max_batch_size and clients send single frames or batches of any size. The preferred
batch sizes are multiples of f, which waste no padded slots.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..folded import FoldedModel
from ..fsio import atomic_write_text, writing
from .onnx_export import (
    INPUT_NAME,
    MAX_BATCH,
    OUTPUT_NAME,
    ExportError,
    check_export_options,
    export_onnx,
    input_spec,
)

LABELS = "labels.txt"
INSTANCE_KINDS = ("auto", "gpu", "cpu")  # auto: no instance_group, Triton puts one per GPU, else one on CPU
_TRITON_TYPES = {"float32": "TYPE_FP32", "uint8": "TYPE_UINT8"}


def check_max_batch(max_batch_size: int) -> int:
    """`max_batch_size` if it is an integer in 1..MAX_BATCH, else ExportError naming the fix."""
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or not 1 <= max_batch_size <= MAX_BATCH:
        raise ExportError(f"max batch size must be an integer >= 1, got {max_batch_size!r} (at most {MAX_BATCH}; the "
                          "graph has a batch dimension, so Triton's max_batch_size 0, 'no batching', does not apply)")
    return max_batch_size


def preferred_batch_sizes(max_batch_size: int, fold: int) -> list[int]:
    """64, 256 and max_batch_size rounded down to multiples of `fold`, those in 1..max_batch_size."""
    sizes = {b // fold * fold for b in (64, 256, max_batch_size) if b <= max_batch_size}
    return sorted(b for b in sizes if b > 0)


def _instance_group(kind: str, count: int) -> list[str]:
    if kind not in INSTANCE_KINDS:
        raise ExportError(f"instance kind must be one of {', '.join(INSTANCE_KINDS)}, got {kind!r}")
    if count < 1:
        raise ExportError(f"instance count must be >= 1, got {count}")
    if kind == "auto":
        return []
    return ["instance_group [", f"  {{ count: {count}, kind: KIND_{kind.upper()} }}", "]"]


def triton_config(model: FoldedModel, name: str, *, max_batch_size: int = 1024, input_format: str = "float-nchw",
                  precision: str = "fp32", instance_kind: str = "auto", instance_count: int = 1,
                  queue_delay_us: int = 100) -> str:
    """config.pbtxt text for the served graph of `model` (see onnx_export.served_onnx_bytes)."""
    check_export_options(input_format, precision)
    check_max_batch(max_batch_size)
    dtype, dims = input_spec(model, input_format)
    preferred = preferred_batch_sizes(max_batch_size, model.fold)
    what = "uint8 frames (B, H, W, C), 0..255" if dtype == "uint8" else "float32 images (B, C, H, W) in [0, 1]"
    lines = [
        f"# FoldedCNN {name}: fold f={model.fold}, {precision} inside; input {what}, normalised inside.",
        f"# Any batch from 1 to max_batch_size: the graph pads to a multiple of {model.fold} and drops the padding.",
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {max_batch_size}",
        "input [",
        "  {",
        f'    name: "{INPUT_NAME}"',
        f"    data_type: {_TRITON_TYPES[dtype]}",
        f"    dims: [ {', '.join(map(str, dims))} ]",
        "  }",
        "]",
        "output [",
        "  {",
        f'    name: "{OUTPUT_NAME}"',
        "    data_type: TYPE_FP32",
        f"    dims: [ {model.num_classes} ]",
        f'    label_filename: "{LABELS}"',
        "  }",
        "]",
        "dynamic_batching {",
        *([f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]"] if preferred else []),
        f"  max_queue_delay_microseconds: {queue_delay_us}",
        "}",
        *_instance_group(instance_kind, instance_count),
        "parameters [",
        *_parameter("fold", str(model.fold), last=False),
        *_parameter("class_names", json.dumps(model.identity.resolved_class_names), last=False),
        *_parameter("normalization", json.dumps(model.normalization), last=True),
        "]",
    ]
    return "\n".join(lines) + "\n"


def _parameter(key: str, value: str, last: bool) -> list[str]:
    return ["  {", f'    key: "{key}"', f"    value: {{ string_value: {json.dumps(value)} }}",
            "  }" if last else "  },"]


def write_triton_repository(model: FoldedModel, out_dir: str | os.PathLike, name: str, *,
                            max_batch_size: int = 1024, input_format: str = "float-nchw", precision: str = "fp32",
                            instance_kind: str = "auto", instance_count: int = 1) -> Path:
    """Write DIR/<name>/1/model.onnx, DIR/<name>/config.pbtxt and DIR/<name>/labels.txt; returns DIR/<name>.

    The options are checked before anything is written.
    """
    config = triton_config(model, name, max_batch_size=max_batch_size, input_format=input_format,
                           precision=precision, instance_kind=instance_kind, instance_count=instance_count)
    root = Path(out_dir) / name
    export_onnx(model, root / "1" / "model.onnx", input_format=input_format, precision=precision, name=name)
    labels = "".join(" ".join(str(n).splitlines()) + "\n" for n in model.identity.resolved_class_names)
    with writing(root / "config.pbtxt", "export again"):
        atomic_write_text(root / LABELS, labels)
        atomic_write_text(root / "config.pbtxt", config)
    return root
