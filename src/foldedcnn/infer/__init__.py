"""Inference: the Engine (pad -> fold -> backend -> unfold), its backends, ONNX and Triton export."""

from .backends import BACKENDS, BackendUnavailableError, available_backends
from .engine import Engine
from .onnx_export import export_onnx
from .preprocess import NonFiniteInputError

__all__ = ["BACKENDS", "BackendUnavailableError", "Engine", "NonFiniteInputError", "available_backends",
           "export_onnx"]
