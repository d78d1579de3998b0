"""Fused Triton kernels (foldedcnn.infer.fused): all convs and pools in one launch, the classifier in one more.

Runs networks made of Conv2d (stride 1) + bias + ReLU + MaxPool2d chains, a flatten and Linear
(+ReLU) layers: every NoScope and game zoo model at every fold, and fold_model nets of that shape.
Any other model runs on the "torch" backend with a BackendFallbackWarning naming the layer. On CUDA
the kernels are compiled by Triton; on the CPU only Triton's interpreter runs them
(TRITON_INTERPRET=1 set before the first use, CPU tensors), which the tests use.
"""

from __future__ import annotations

import os

import torch

from ...folded import FoldedModel
from .._preprocess import affine
from ..fused import UnfusableModelError, fused_program
from .base import Backend


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


class TritonBackend(Backend):
    """Fused kernels on a FusedProgram of the model; logits float32."""

    name = "triton"
    channels_last = True
    reads_raw_images = True
    fallback = "torch"

    def __init__(self, model: FoldedModel, device: torch.device, dtype: torch.dtype, tiling=None) -> None:
        """`tiling`: a foldedcnn.infer.fused._run.Tiling (block sizes, scratch budget, band rows); None: defaults."""
        super().__init__(model, device, dtype)
        from ..fused._run import INTERPRETER_TILING, FusedRunner, Tiling

        program = fused_program(model.network, self._folded_shape(model))
        tiling = tiling or (Tiling() if device.type == "cuda" else INTERPRETER_TILING)
        self.runner = FusedRunner(program, device, dtype, tiling)
        self._affines: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @staticmethod
    def _folded_shape(model: FoldedModel) -> tuple[int, int, int]:
        c, h, w = model.input_shape
        return (model.fold * c, h, w)

    @classmethod
    def unavailable_reason(cls, device: torch.device, dtype: torch.dtype) -> str | None:
        try:
            import triton  # noqa: F401
        except ImportError:
            return "triton is not installed (pip install triton)"
        if device.type == "cuda":
            return "TRITON_INTERPRET=1 runs kernels on CPU tensors only; unset it for CUDA" if _interpreting() else None
        if device.type != "cpu":
            return f"no Triton kernels for {device.type} devices"
        if not _interpreting():
            return "Triton compiles for CUDA GPUs; on the CPU only its slow interpreter runs (TRITON_INTERPRET=1)"
        if dtype == torch.bfloat16:
            return "Triton's interpreter cannot compute in bfloat16; use float32 or float16"
        return None

    @classmethod
    def model_unsupported_reason(cls, model: FoldedModel) -> str | None:
        try:
            fused_program(model.network, cls._folded_shape(model))
        except UnfusableModelError as exc:
            return str(exc)
        return None

    @classmethod
    def considered_by_auto(cls, device: torch.device) -> bool:
        return device.type == "cuda"  # the interpreter is for tests, never fast

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """(G, f*C, H, W) normalised, any strides -> (G, f*K) float32."""
        return self.runner.forward_folded(x)

    def forward_images(self, images: torch.Tensor, normalization: dict[str, list[float]]) -> torch.Tensor:
        """Raw images (B, H, W, C) or (B, C, H, W), uint8 or float in [0, 1], on the device -> (ceil(B/f), f*K).

        Folded and normalised inside the first kernel, as Engine.prepare would: x / 255 (uint8) then
        (x - mean) / std; image j of group g is batch index g*f + j; a last partial group is zero-padded.
        """
        nchw = images if images.shape[1:] == self.model.input_shape else images.permute(0, 3, 1, 2)
        key = (images.dtype == torch.uint8, tuple(normalization["mean"]), tuple(normalization["std"]))
        if key not in self._affines:  # built once: no host-to-device copy per call
            scale, shift = affine(normalization, self.model.input_shape[0], key[0], self.device, torch.float32)
            self._affines[key] = (scale.flatten(), shift.flatten())
        return self.runner.forward_images(nchw, self.model.fold, *self._affines[key])
