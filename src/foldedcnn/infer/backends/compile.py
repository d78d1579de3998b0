"""torch.compile at a few fixed batch buckets: CUDA graphs (mode="reduce-overhead") on GPU, inductor on CPU."""

from __future__ import annotations

import torch
import torch._dynamo

from ...folded import FoldedModel
from .torch import TorchBackend

RECOMPILE_LIMIT = 64


def _allow_recompiles(limit: int) -> None:
    """Let one module class be compiled at many shapes (folds, buckets, zoo models) before dynamo gives up."""
    cfg = torch._dynamo.config
    name = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"  # renamed in torch 2.6
    setattr(cfg, name, max(getattr(cfg, name), limit))


class CompileBackend(TorchBackend):
    """torch.compile of the channels-last network with static shapes.

    The engine only calls it at its batch buckets (multiples of f, `static_shapes`), so each bucket
    compiles once and never goes dynamic. On CUDA, mode="reduce-overhead" captures each bucket as a
    CUDA graph and replays it. On CPU, inductor compiles with weight freezing (constant folding and
    oneDNN weight prepacking).
    """

    name = "compile"
    static_shapes = True

    def __init__(self, model: FoldedModel, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(model, device, dtype)
        _allow_recompiles(RECOMPILE_LIMIT)
        self.cuda_graphs = device.type == "cuda"
        if self.cuda_graphs:
            self.compiled = torch.compile(self.net, mode="reduce-overhead", dynamic=False)
        else:
            self.compiled = torch.compile(self.net, dynamic=False, options={"freezing": True})

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """(G, f*C, H, W) -> (G, f*K); with CUDA graphs the output is overwritten by the next call."""
        with torch.inference_mode(), self._cudnn():
            if self.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            return self.compiled(x)
