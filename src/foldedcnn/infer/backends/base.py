"""What every backend provides: a folded forward (G, f*C, H, W) -> (G, f*K) on one device and dtype."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from ...folded import FoldedModel


class Backend(ABC):
    """One way to run a folded network.

    `forward_folded(x)` takes folded inputs (G, f*C, H, W) on `device` in `dtype`, laid out
    channels-last when `channels_last` is True (the engine fills its buffers that way), and
    returns folded logits (G, f*K) on `device`. A backend with `static_shapes` is only ever
    called with G equal to one of a few bucket sizes (CUDA graphs replay fixed shapes).
    """

    name: ClassVar[str]
    channels_last: ClassVar[bool] = False
    static_shapes: bool = False
    #: Whether its first call at each batch bucket compiles (seconds or more, in every process): auto then asks
    #: it to be clearly faster than a backend that does not (_autotune.COMPILE_MARGIN).
    compiles_per_bucket: ClassVar[bool] = False
    #: Whether `forward_images(images, normalization)` takes raw uint8 batches (folds and normalises itself).
    reads_raw_images: ClassVar[bool] = False
    #: Backend that runs a model this one cannot (see `model_unsupported_reason`); None: no fallback needed.
    fallback: ClassVar[str | None] = None
    #: Set on a fallback backend: why the requested backend could not run the model.
    fallback_reason: str | None = None

    def __init__(self, model: FoldedModel, device: torch.device, dtype: torch.dtype) -> None:
        self.model = model
        self.device = device
        self.dtype = dtype

    @classmethod
    def unavailable_reason(cls, device: torch.device, dtype: torch.dtype) -> str | None:
        """Why this backend cannot run on `device` at `dtype`, or None when it can."""
        return None

    @classmethod
    def model_unsupported_reason(cls, model: FoldedModel) -> str | None:
        """Why this backend cannot run `model` (create_backend then uses `fallback`), or None when it can."""
        return None

    @classmethod
    def considered_by_auto(cls, device: torch.device) -> bool:
        """Whether Engine(backend="auto") times this backend on `device`."""
        return True

    @abstractmethod
    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """(G, f*C, H, W) -> (G, f*K)."""
