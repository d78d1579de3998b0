"""Fused Triton kernels for chains of conv (+bias +ReLU) / max-pool layers followed by Linear layers.

`fused_program` (pure torch, no Triton) reads a network as a FusedProgram the kernels can run, or
raises UnfusableModelError naming the layer; `_run.FusedRunner` (imports Triton) runs a program with the
feature kernel generated for it (`_unrolled`) or the generic one (`_conv`), and the classifier kernel (`_linear`).
"""

from __future__ import annotations

from torch import nn

from ._program import ConvOp, FusedProgram, LinearOp, PoolOp, UnfusableModelError, extract_program
from ._schedule import check_kernel_limits


def fused_program(network: nn.Module, input_shape: tuple[int, int, int]) -> FusedProgram:
    """The program of `network` for folded inputs (f*C, H, W), checked against the kernels' limits."""
    return check_kernel_limits(extract_program(network, input_shape))


__all__ = ["ConvOp", "FusedProgram", "LinearOp", "PoolOp", "UnfusableModelError", "extract_program",
           "fused_program"]
