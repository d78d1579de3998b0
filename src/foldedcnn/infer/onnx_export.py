"""ONNX export with the fold and unfold inside the graph: images (B, C, H, W) -> logits (B, K).

B is dynamic and must be a multiple of f (the graph's batch dimension is declared as f * groups);
the engine pads, a Triton client sends multiples of f.
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

from ..folded import FoldedModel
from ..fsio import atomic_path, writing

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
OPSET = 18


class ImagesToLogits(nn.Module):
    """(B, C, H, W) -> (B, K) with B a multiple of f: reshape-fold, network, reshape-unfold."""

    def __init__(self, model: FoldedModel) -> None:
        super().__init__()
        self.network = copy.deepcopy(model.network)  # exported in fp32 on CPU; the caller's model is left as is
        self.folded_shape = (model.fold * model.input_shape[0], *model.input_shape[1:])
        self.num_classes = model.num_classes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        folded = images.reshape(-1, *self.folded_shape)
        return self.network(folded).reshape(-1, self.num_classes)


def onnx_bytes(model: FoldedModel) -> bytes:
    """Serialized fp32 ONNX model: input "images" (f*groups, C, H, W) -> output "logits" (f*groups, K)."""
    wrapper = ImagesToLogits(model).to("cpu", torch.float32).eval()
    example = torch.rand(2 * model.fold, *model.input_shape)
    groups = torch.export.Dim("groups", min=1, max=1 << 20)
    quiet = io.StringIO()
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"images": {0: model.fold * groups}},
                opset_version=OPSET,
                dynamo=True,
            )
    finally:
        log.setLevel(level)
    return program.model_proto.SerializeToString()


def export_onnx(model: FoldedModel, path: str | os.PathLike,
                normalization: dict[str, list[float]] | None = None) -> Path:
    """Write the fp32 ONNX graph of `model` (fold and unfold inside) to `path`.

    The graph takes normalised images; fold, classes, input shape and `normalization` (what the
    caller must apply to images scaled to [0, 1]) are recorded in the model's metadata_props.
    """
    import onnx

    proto = onnx.load_from_string(onnx_bytes(model))
    meta = {"foldedcnn.fold": str(model.fold), "foldedcnn.num_classes": str(model.num_classes),
            "foldedcnn.input_shape": json.dumps(list(model.input_shape)),
            "foldedcnn.normalization": json.dumps(normalization or {})}
    onnx.helper.set_model_props(proto, meta)
    path = Path(path)
    with writing(path, "export again (nothing partial was left)"):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(proto.SerializeToString())
    return path
