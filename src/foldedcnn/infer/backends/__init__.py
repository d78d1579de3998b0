"""Backends by name: torch (eager), torch-plain (NCHW eager baseline), compile, compile-max (GPU), onnxruntime,
triton (fused kernels)."""

from __future__ import annotations

import warnings

import torch

from ...device import dtype_name
from ...errors import FoldedCNNError
from ...folded import FoldedModel
from .base import Backend
from .compile import CompileBackend, CompileMaxBackend
from .onnxruntime import OnnxRuntimeBackend
from .torch import PlainTorchBackend, TorchBackend
from .triton import TritonBackend

BACKENDS: dict[str, type[Backend]] = {
    b.name: b for b in (TorchBackend, CompileBackend, CompileMaxBackend, OnnxRuntimeBackend, PlainTorchBackend,
                        TritonBackend)
}


class BackendUnavailableError(FoldedCNNError):
    """A backend that does not exist or cannot run on the requested device and dtype."""


class BackendFallbackWarning(UserWarning):
    """The requested backend cannot run this model; another one runs it (the message says which and why)."""


def available_backends(device: torch.device, dtype: torch.dtype) -> list[str]:
    """Names of the backends that can run on `device` at `dtype`."""
    return [name for name, cls in BACKENDS.items() if cls.unavailable_reason(device, dtype) is None]


def create_backend(name: str, model: FoldedModel, device: torch.device, dtype: torch.dtype) -> Backend:
    """Backend `name` for `model`; an unknown or unavailable name raises, listing the available ones."""
    avail = ", ".join(available_backends(device, dtype))
    if name not in BACKENDS:
        raise BackendUnavailableError(f"unknown backend {name!r}; available on {device} {dtype_name(dtype)}: {avail}")
    reason = BACKENDS[name].unavailable_reason(device, dtype)
    if reason is not None:
        raise BackendUnavailableError(f"backend {name!r} is unavailable on {device} {dtype_name(dtype)} ({reason}); "
                                      f"available: {avail}")
    cls = BACKENDS[name]
    why = cls.model_unsupported_reason(model)
    if why is None:
        return cls(model, device, dtype)
    assert cls.fallback is not None, f"backend {name!r} refuses a model but names no fallback"
    warnings.warn(f"backend {name!r} cannot run this model ({why}); using {cls.fallback!r} instead",
                  BackendFallbackWarning, stacklevel=2)
    backend = create_backend(cls.fallback, model, device, dtype)
    backend.fallback_reason = f"{name}: {why}"
    return backend


__all__ = ["BACKENDS", "Backend", "BackendFallbackWarning", "BackendUnavailableError", "available_backends",
           "create_backend"]
