"""ONNX export with the fold and unfold inside the graph.

Two graphs are made from a FoldedModel:

- the served graph (`export_onnx`, for ONNX Runtime and Triton clients): images of any batch B >= 1
  -> logits (B, K) float32. It normalises inside (float32 (B, C, H, W) in [0, 1], or uint8
  (B, H, W, C) in 0..255), pads the batch with zero images to a multiple of f, folds by a reshape
  (image i in group i // f, channels [(i % f)*C, (i % f + 1)*C), the layout's order), runs the network
  in fp32 or fp16, unfolds and drops the padding rows. A client sends raw frames and nothing else.
- the backend graph (`onnx_bytes`, the Engine's onnxruntime backend): batches the Engine has already
  normalised and padded, (G*f, C, H, W) -> (G*f, K), without the copy that padding inside costs.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import FoldedCNNError
from ..folded import FoldedModel
from ..fsio import atomic_path, writing
from ._preprocess import affine

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
OPSET = 18
INPUT_FORMATS = ("float-nchw", "uint8-nhwc")
PRECISIONS = ("fp32", "fp16")
MAX_BATCH = 1 << 20  # upper bound of the graph's dynamic batch dimension


class ExportError(FoldedCNNError):
    """An export option that does not exist or does not fit the model."""


class _FoldedGraph(nn.Module):
    """(B, C, H, W) normalised, B a multiple of f -> (B, K): reshape-fold, network, reshape-unfold."""

    def __init__(self, model: FoldedModel) -> None:
        super().__init__()
        self.network = copy.deepcopy(model.network)  # exported on CPU; the caller's model is left as is
        self.folded_shape = (model.fold * model.input_shape[0], *model.input_shape[1:])
        self.num_classes = model.num_classes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        folded = images.reshape(-1, *self.folded_shape)
        return self.network(folded).reshape(-1, self.num_classes)


class _ServedGraph(nn.Module):
    """Raw images, any B >= 1 -> logits (B, K) float32: normalise, pad, fold, network, unfold, unpad.

    No branch depends on B, so the exported batch dimension stays dynamic: f - 1 zero images are
    appended and the first ceil(B / f) * f rows are folded.
    """

    def __init__(self, model: FoldedModel, input_format: str, precision: str) -> None:
        super().__init__()
        c, h, w = model.input_shape
        uint8 = input_format == "uint8-nhwc"
        self.channels_last_input = uint8
        self.fold, self.image_shape, self.num_classes = model.fold, (c, h, w), model.num_classes
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.network = copy.deepcopy(model.network).to(self.dtype)
        scale, shift = affine(model.normalization, c, uint8, torch.device("cpu"), torch.float32)
        self.register_buffer("scale", scale.view(1, c, 1, 1))
        self.register_buffer("shift", shift.view(1, c, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2) if self.channels_last_input else images
        x = x.to(torch.float32) * self.scale + self.shift
        b, f = x.shape[0], self.fold
        c, h, w = self.image_shape
        if f > 1:
            x = torch.cat([x, x.new_zeros(f - 1, c, h, w)])
        groups = (b + f - 1) // f
        folded = x[: groups * f].reshape(groups, f * c, h, w).to(self.dtype)
        logits = self.network(folded).to(torch.float32).reshape(groups * f, self.num_classes)
        return logits[:b]


def _to_onnx(module: nn.Module, example: torch.Tensor, batch: torch.export.Dim) -> bytes:
    """Serialized ONNX of `module` (eval, CPU) with input 0's batch dimension dynamic; exporter chatter muted."""
    quiet = io.StringIO()
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module.eval(),
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={INPUT_NAME: {0: batch}},
                opset_version=OPSET,
                dynamo=True,
            )
    finally:
        log.setLevel(level)
    return program.model_proto.SerializeToString()


def onnx_bytes(model: FoldedModel) -> bytes:
    """The backend graph, fp32: normalised images (f*groups, C, H, W) -> logits (f*groups, K)."""
    wrapper = _FoldedGraph(model).to("cpu", torch.float32)
    groups = torch.export.Dim("groups", min=1, max=MAX_BATCH)
    return _to_onnx(wrapper, torch.rand(2 * model.fold, *model.input_shape), model.fold * groups)


def check_export_options(input_format: str, precision: str) -> None:
    """Raise ExportError naming the choices for an unknown input format or precision."""
    if input_format not in INPUT_FORMATS:
        raise ExportError(f"input format must be one of {', '.join(INPUT_FORMATS)}, got {input_format!r}")
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def input_spec(model: FoldedModel, input_format: str) -> tuple[str, tuple[int, int, int]]:
    """(element type, per-image dims) the served graph takes: ("float32", (C, H, W)) or ("uint8", (H, W, C))."""
    c, h, w = model.input_shape
    return ("uint8", (h, w, c)) if input_format == "uint8-nhwc" else ("float32", (c, h, w))


def served_onnx_bytes(model: FoldedModel, input_format: str = "float-nchw", precision: str = "fp32") -> bytes:
    """The served graph: images (B, C, H, W) float32 in [0, 1] or (B, H, W, C) uint8, any B >= 1 -> logits (B, K)
    float32, with normalisation, padding to a multiple of f, fold and unfold inside; fp16 computes in half."""
    check_export_options(input_format, precision)
    wrapper = _ServedGraph(model, input_format, precision).to("cpu")
    kind, dims = input_spec(model, input_format)
    example = torch.randint(0, 256, (5, *dims), dtype=torch.uint8) if kind == "uint8" else torch.rand(5, *dims)
    return _same_batch_dim(_to_onnx(wrapper, example, torch.export.Dim("batch", min=1, max=MAX_BATCH)))


def _same_batch_dim(graph: bytes) -> bytes:
    """The graph with its output's batch dimension named as its input's: the exporter names it after the
    expression computing it ("Min(batch, 4*(((batch + 3)//4)))"), which equals B but is what a client that
    reads the graph's shapes, or Netron, shows."""
    import onnx

    proto = onnx.load_from_string(graph)
    name = proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    for output in proto.graph.output:
        output.type.tensor_type.shape.dim[0].dim_param = name
    return proto.SerializeToString()


def export_onnx(model: FoldedModel, path: str | os.PathLike, *, input_format: str = "float-nchw",
                precision: str = "fp32", name: str | None = None) -> Path:
    """Write the served graph of `model` (see served_onnx_bytes) to `path`, atomically.

    Name, fold, classes, class names, input format, precision and the normalisation applied inside
    are recorded in the model's metadata_props (keys "foldedcnn.*").
    """
    import onnx

    proto = onnx.load_from_string(served_onnx_bytes(model, input_format, precision))
    meta = {"name": name or "", "fold": str(model.fold), "num_classes": str(model.num_classes),
            "class_names": json.dumps(model.identity.resolved_class_names),
            "input_shape": json.dumps(list(model.input_shape)), "input_format": input_format,
            "precision": precision, "normalization": json.dumps(model.normalization)}
    onnx.helper.set_model_props(proto, {f"foldedcnn.{k}": v for k, v in meta.items()})
    path = Path(path)
    with writing(path, "export again (nothing partial was left)"):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(proto.SerializeToString())
    return path
