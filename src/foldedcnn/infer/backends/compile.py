"""torch.compile: default inductor on CPU; CUDA graphs (mode="reduce-overhead") at fixed buckets on GPU."""

from __future__ import annotations

import torch

from ...folded import FoldedModel
from .torch import TorchBackend


class CompileBackend(TorchBackend):
    """torch.compile of the channels-last network.

    On CUDA the graph is compiled with mode="reduce-overhead" and dynamic=False, so each batch
    bucket (a multiple of f) is captured once as a CUDA graph and replayed; the engine only calls
    it at bucket sizes (`static_shapes`). On CPU inductor compiles with weight freezing (constant
    folding and oneDNN weight prepacking), marking the batch dimension dynamic after the first size.
    """

    name = "compile"

    def __init__(self, model: FoldedModel, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(model, device, dtype)
        self.static_shapes = device.type == "cuda"
        if self.static_shapes:
            self.compiled = torch.compile(self.net, mode="reduce-overhead", dynamic=False)
        else:
            self.compiled = torch.compile(self.net, options={"freezing": True})

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """(G, f*C, H, W) -> (G, f*K); on CUDA the output lives until the next call."""
        with torch.inference_mode():
            if self.static_shapes:
                torch.compiler.cudagraph_mark_step_begin()
            return self.compiled(x)
