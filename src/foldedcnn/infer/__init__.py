"""Inference: the Engine (pad -> fold -> backend -> unfold), its backends, ONNX and Triton export."""

from ._preprocess import InputRangeError, NonFiniteInputError, NonFiniteOutputError
from .backends import BACKENDS, BackendUnavailableError, available_backends
from .engine import Engine
from .onnx_export import export_onnx

__all__ = ["BACKENDS", "BackendUnavailableError", "Engine", "InputRangeError", "NonFiniteInputError",
           "NonFiniteOutputError", "available_backends", "export_onnx"]
