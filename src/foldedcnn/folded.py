"""FoldedModel: a folded network plus the fold/unfold around it, so callers pass plain images."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .errors import ShapeError
from .layout import check_fold, fold_images, unfold_logits


class FoldedModel(nn.Module):
    """Wraps a folded network (N, f*C, H, W) -> (N, f*K).

    `forward(images)` takes (B, C, H, W) for any B (pads, folds, unfolds) and returns (B, K);
    `forward_folded(x)` is the hot path (N, f*C, H, W) -> (N, f*K) with no Python branching.
    `plan` is the fold plan of a generically folded model (None for zoo models).
    """

    def __init__(
        self,
        network: nn.Module,
        fold: int,
        num_classes: int,
        input_shape: tuple[int, int, int],
        plan: Any = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.fold = check_fold(fold)
        self.num_classes = int(num_classes)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.plan = plan

    @classmethod
    def from_zoo(cls, name: str, fold: int = 1, width_mult: float | None = None,
                 align: int | None = None) -> FoldedModel:
        """Zoo model `name` at `fold`, wrapped; widths as in create_model (align 8 by default for fold > 1)."""
        from .models import create_model

        net = create_model(name, fold, width_mult, align)
        return cls(net, fold, net.num_classes, net.input_shape)

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """(N, f*C, H, W) -> (N, f*K)."""
        return self.network(x)

    def check_images(self, images: torch.Tensor) -> None:
        """Raise ShapeError unless `images` is (B, C, H, W) with this model's C, H, W."""
        if images.dim() != 4 or tuple(images.shape[1:]) != self.input_shape:
            c, h, w = self.input_shape
            raise ShapeError(f"expected images of shape (B, {c}, {h}, {w}), got {tuple(images.shape)}")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, K) for any B; image order is kept and padding never returned."""
        self.check_images(images)
        folded, n = fold_images(images, self.fold)
        return unfold_logits(self.forward_folded(folded), self.fold, n)
