"""ONNX Runtime on CPU, running the exported graph that folds and unfolds inside."""

from __future__ import annotations

import torch

from ...folded import FoldedModel
from ..onnx_export import INPUT_NAME, onnx_bytes
from ._onnx_cache import cached_graph
from .base import Backend


class OnnxRuntimeBackend(Backend):
    """fp32 ONNX Runtime CPU session; intra-op threads = torch.get_num_threads(), all graph optimizations; the
    exported graph is kept on disk for the next process (_onnx_cache)."""

    name = "onnxruntime"

    def __init__(self, model: FoldedModel, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(model, device, dtype)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = cached_graph(model, onnx_bytes, lambda graph: ort.InferenceSession(
            graph, opts, providers=["CPUExecutionProvider"]))

    @classmethod
    def unavailable_reason(cls, device: torch.device, dtype: torch.dtype) -> str | None:
        if device.type != "cpu":
            return "onnxruntime runs on the CPU only here"
        if dtype != torch.float32:
            return "onnxruntime runs float32 only"
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime is not installed (pip install onnxruntime)"
        return None

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """(G, f*C, H, W) contiguous float32 CPU -> (G, f*K); the graph sees images (G*f, C, H, W)."""
        g = x.shape[0]
        images = x.contiguous().view(g * self.model.fold, *self.model.input_shape).numpy()
        (logits,) = self.session.run(None, {INPUT_NAME: images})
        return torch.from_numpy(logits).view(g, -1)
