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

    def __init__(self, model: FoldedModel, device: torch.device, dtype: torch.dtype) -> None:
        self.model = model
        self.device = device
        self.dtype = dtype

    @classmethod
    def unavailable_reason(cls, device: torch.device, dtype: torch.dtype) -> str | None:
        """Why this backend cannot run on `device` at `dtype`, or None when it can."""
        return None

    @abstractmethod
    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """(G, f*C, H, W) -> (G, f*K)."""
