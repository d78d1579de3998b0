"""Eager PyTorch: channels-last, inference mode, cudnn.benchmark on GPU; plus a plain NCHW baseline."""

from __future__ import annotations

import contextlib
import copy
from typing import ClassVar

import torch

from ...folded import FoldedModel
from .base import Backend


class TorchBackend(Backend):
    """Eager PyTorch on a private copy of the network, weights in `dtype`, channels-last."""

    name = "torch"
    channels_last = True
    cudnn_benchmark: ClassVar[bool] = True  # let cuDNN time its algorithms; set per call, never process-wide

    def __init__(self, model: FoldedModel, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(model, device, dtype)
        net = copy.deepcopy(model.network).eval().to(device=device, dtype=dtype)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net

    def _cudnn(self) -> contextlib.AbstractContextManager:
        """cuDNN flags of this backend for one call on CUDA (other settings as they are); nothing on CPU."""
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        c = torch.backends.cudnn
        return c.flags(enabled=c.enabled, benchmark=self.cudnn_benchmark, deterministic=c.deterministic,
                       allow_tf32=c.allow_tf32)

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """(G, f*C, H, W) -> (G, f*K)."""
        with torch.inference_mode(), self._cudnn():
            return self.net(x)


class PlainTorchBackend(TorchBackend):
    """Eager PyTorch as a user would first write it: NCHW, no cudnn autotuning (the baseline)."""

    name = "torch-plain"
    channels_last = False
    cudnn_benchmark = False
