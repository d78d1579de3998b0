"""Eager PyTorch: channels-last, inference mode, cudnn.benchmark on GPU; plus a plain NCHW baseline."""

from __future__ import annotations

import copy

import torch

from ...folded import FoldedModel
from .base import Backend


class TorchBackend(Backend):
    """Eager PyTorch on a private copy of the network, weights in `dtype`, channels-last."""

    name = "torch"
    channels_last = True

    def __init__(self, model: FoldedModel, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(model, device, dtype)
        net = copy.deepcopy(model.network).eval().to(device=device, dtype=dtype)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
            if device.type == "cuda":
                torch.backends.cudnn.benchmark = True
        self.net = net

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """(G, f*C, H, W) -> (G, f*K)."""
        with torch.inference_mode():
            return self.net(x)


class PlainTorchBackend(TorchBackend):
    """Eager PyTorch as a user would first write it: NCHW, no cudnn autotuning (the baseline)."""

    name = "torch-plain"
    channels_last = False
