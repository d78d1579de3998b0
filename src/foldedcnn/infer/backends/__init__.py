"""Backends by name: torch (eager), torch-plain (NCHW eager baseline), compile, compile-max (GPU), onnxruntime."""

from __future__ import annotations

import torch

from ...device import dtype_name
from ...errors import FoldedCNNError
from ...folded import FoldedModel
from .base import Backend
from .compile import CompileBackend, CompileMaxBackend
from .onnxruntime import OnnxRuntimeBackend
from .torch import PlainTorchBackend, TorchBackend

BACKENDS: dict[str, type[Backend]] = {
    b.name: b for b in (TorchBackend, CompileBackend, CompileMaxBackend, OnnxRuntimeBackend, PlainTorchBackend)
}


class BackendUnavailableError(FoldedCNNError):
    """A backend that does not exist or cannot run on the requested device and dtype."""


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
    return BACKENDS[name](model, device, dtype)


__all__ = ["BACKENDS", "Backend", "BackendUnavailableError", "available_backends", "create_backend"]
