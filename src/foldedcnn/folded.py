"""FoldedModel: a folded network plus who it is, and the fold/unfold around it so callers pass plain images."""

from __future__ import annotations

import torch
from torch import nn

from .errors import ShapeError
from .identity import IdentifiedNetwork, ModelIdentity, identity_of
from .layout import check_fold, fold_images, unfold_logits


class FoldedModel(IdentifiedNetwork, nn.Module):
    """Wraps a folded network (N, f*C, H, W) -> (N, f*K) and its ModelIdentity.

    `FoldedModel(network)` takes the identity a zoo network carries; other networks pass one.
    `forward(images)` takes (B, C, H, W) for any B (pads, folds, unfolds) and returns (B, K);
    `forward_folded(x)` is the hot path (N, f*C, H, W) -> (N, f*K) with no Python branching.
    `fold`, `num_classes`, `input_shape`, `plan` (FoldPlan of a fold_model network, else None) and
    `normalization` read the identity.
    """

    def __init__(self, network: nn.Module, identity: ModelIdentity | None = None) -> None:
        super().__init__()
        self.network = network
        self.identity = identity if identity is not None else identity_of(network)
        check_fold(self.identity.fold)

    @classmethod
    def from_zoo(cls, name: str, fold: int = 1, width_mult: float | None = None, align: int | None = None,
                 num_classes: int | None = None, block_of: int = 1, min_block: int | None = None) -> FoldedModel:
        """Zoo model `name` at `fold` (with `num_classes` classes instead of the family's), wrapped; widths
        as in create_model (align 8 by default for fold > 1, min_block 8 with it; block_of > 1: a narrow network)."""
        from .models import create_model

        return cls(create_model(name, fold, width_mult, align, num_classes, block_of, min_block))

    @property
    def plan(self):
        """The FoldPlan of a fold_model network, None for a zoo network."""
        return self.identity.plan

    @property
    def normalization(self) -> dict[str, list[float]]:
        """What maps images in [0, 1] to the network's input (the default for an untrained model)."""
        return self.identity.resolved_normalization

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
