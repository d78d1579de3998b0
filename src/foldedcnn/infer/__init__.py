"""Inference: the Engine (pad -> fold -> backend -> unfold), its backends, ONNX and Triton export."""

from ._preprocess import InputRangeError, NonFiniteInputError, NonFiniteOutputError
from .backends import BACKENDS, BackendUnavailableError, available_backends
from .engine import Engine
from .export import Exported, export_model
from .onnx_export import ExportError, export_onnx
from .triton_repository import write_triton_repository

__all__ = ["BACKENDS", "BackendUnavailableError", "Engine", "ExportError", "Exported", "InputRangeError",
           "NonFiniteInputError", "NonFiniteOutputError", "available_backends", "export_model", "export_onnx",
           "write_triton_repository"]
