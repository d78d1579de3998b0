"""A Triton Inference Server model repository around the ONNX graph (fold and unfold inside).

    DIR/<name>/config.pbtxt     platform onnxruntime_onnx, dynamic batching
    DIR/<name>/1/model.onnx     images (B, C, H, W) float32, normalised -> logits (B, K)

The graph folds by a reshape, so every batch Triton forms must be a multiple of f: max_batch_size
and the preferred batch sizes are multiples of f, and clients send requests of a multiple of f
images (then every combination the dynamic batcher forms is one too).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import FoldedCNNError
from ..folded import FoldedModel
from ..fsio import atomic_write_text, writing
from ..layout import round_up
from .onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx


def triton_config(model: FoldedModel, name: str, max_batch_size: int = 1024,
                  normalization: dict[str, list[float]] | None = None, queue_delay_us: int = 100) -> str:
    """config.pbtxt text: max_batch_size (>= 1) and preferred batch sizes rounded up to multiples of f."""
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise FoldedCNNError(f"max batch size must be an integer >= 1, got {max_batch_size!r}")
    f = model.fold
    top = round_up(max_batch_size, f)
    preferred = sorted({round_up(b, f) for b in (64, 256, top) if round_up(b, f) <= top})
    c, h, w = model.input_shape
    lines = [
        f"# FoldedCNN, fold f={f}: send requests of a multiple of {f} images (the graph folds by reshape).",
        "# Input: float32 images (B, C, H, W) already normalised: (x / 255 - mean) / std per channel.",
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {top}",
        "input [",
        "  {",
        f'    name: "{INPUT_NAME}"',
        "    data_type: TYPE_FP32",
        f"    dims: [ {c}, {h}, {w} ]",
        "  }",
        "]",
        "output [",
        "  {",
        f'    name: "{OUTPUT_NAME}"',
        "    data_type: TYPE_FP32",
        f"    dims: [ {model.num_classes} ]",
        "  }",
        "]",
        "dynamic_batching {",
        f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]",
        f"  max_queue_delay_microseconds: {queue_delay_us}",
        "}",
        "parameters [",
        "  {",
        '    key: "fold"',
        f'    value: {{ string_value: "{f}" }}',
        "  },",
        "  {",
        '    key: "normalization"',
        f"    value: {{ string_value: {json.dumps(json.dumps(normalization or {}))} }}",
        "  }",
        "]",
    ]
    return "\n".join(lines) + "\n"


def write_triton_repository(model: FoldedModel, out_dir: str | os.PathLike, name: str, max_batch_size: int = 1024,
                            normalization: dict[str, list[float]] | None = None) -> Path:
    """Write DIR/<name>/1/model.onnx and DIR/<name>/config.pbtxt; returns DIR/<name>."""
    root = Path(out_dir) / name
    config = triton_config(model, name, max_batch_size, normalization)
    export_onnx(model, root / "1" / "model.onnx", normalization)
    with writing(root / "config.pbtxt", "export again"):
        atomic_write_text(root / "config.pbtxt", config)
    return root
