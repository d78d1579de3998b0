"""torch.compile at a few fixed batch buckets.

"compile": CUDA graphs (mode="reduce-overhead") on GPU, inductor with weight freezing on CPU.
"compile-max": GPU only, mode="max-autotune" (Triton / GEMM template autotuning and CUDA graphs),
the same compile a user gets from torch.compile(mode="max-autotune"), so at f = 1 it shares the
peer's cached graph and kernels. Both keep their compiled graphs and autotuning results in PyTorch's on-disk
caches under foldedcnn's cache dir (see _compile_cache), so a later process starts in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from ...folded import FoldedModel
from ._compile_cache import compile_or_recover, use_compile_cache
from .torch import TorchBackend

RECOMPILE_LIMIT = 64


def prepare_compile() -> Path:
    """Before torch.compile: let one module class be compiled at many shapes (folds, buckets, zoo models)
    before dynamo gives up, and keep compiled artefacts in the persistent cache (returned)."""
    import torch._dynamo  # here, not at import: it costs every process ~1.5 s, used or not

    cfg = torch._dynamo.config
    name = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"  # renamed in torch 2.6
    setattr(cfg, name, max(getattr(cfg, name), RECOMPILE_LIMIT))
    return use_compile_cache()


class CompileBackend(TorchBackend):
    """torch.compile of the channels-last network with static shapes.

    The engine only calls it at its batch buckets (multiples of f, `static_shapes`), so each bucket
    compiles once and never goes dynamic. On CUDA, mode="reduce-overhead" captures each bucket as a
    CUDA graph and replays it. On CPU, inductor compiles with weight freezing (constant folding and
    oneDNN weight prepacking). A compile that fails on a damaged cache empties it and compiles again.
    """

    name = "compile"
    static_shapes = True
    compiles_per_bucket = True
    gpu_mode: ClassVar[str] = "reduce-overhead"

    def __init__(self, model: FoldedModel, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(model, device, dtype)
        self.cache = prepare_compile()
        self.cuda_graphs = device.type == "cuda"
        self.compiled = torch.compile(self.net, dynamic=False, **self._compile_args())
        self._compiled_shapes: set[tuple[int, ...]] = set()

    def _compile_args(self) -> dict[str, Any]:
        """Keyword arguments of torch.compile for this backend on its device."""
        if self.cuda_graphs:
            return {"mode": self.gpu_mode}
        return {"options": {"freezing": True}}

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        return self.compiled(x)

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """(G, f*C, H, W) -> (G, f*K); with CUDA graphs the output is overwritten by the next call."""
        with torch.inference_mode(), self._cudnn():
            shape = tuple(x.shape)
            if shape in self._compiled_shapes:
                return self._call(x)
            out = compile_or_recover(lambda: self._call(x), self.cache)
            self._compiled_shapes.add(shape)
            return out


class CompileMaxBackend(CompileBackend):
    """torch.compile mode="max-autotune", on CUDA only: inductor times Triton and GEMM-template kernels
    per layer and shape, and replays each bucket as a CUDA graph. The slow first compile (20-30 s per
    model and fold on an H200) is paid once per machine thanks to the persistent caches."""

    name = "compile-max"
    gpu_mode = "max-autotune"

    @classmethod
    def unavailable_reason(cls, device: torch.device, dtype: torch.dtype) -> str | None:
        if device.type != "cuda":
            return "max-autotune is for CUDA GPUs; on the CPU use 'compile' or 'onnxruntime'"
        return None
