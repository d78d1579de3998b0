"""Tiny folded models for the inference tests (fast to export and compile)."""

from __future__ import annotations

import torch
from torch import nn

from foldedcnn.folded import FoldedModel
from foldedcnn.identity import ModelIdentity


def tiny_model(fold: int = 3, classes: int = 5, shape: tuple[int, int, int] = (3, 8, 8), seed: int = 0) -> FoldedModel:
    """(N, f*C, H, W) -> (N, f*K): conv3x3 relu maxpool2 flatten linear."""
    torch.manual_seed(seed)
    c, h, w = shape
    net = nn.Sequential(nn.Conv2d(fold * c, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(6 * (h // 2) * (w // 2), fold * classes))
    return FoldedModel(net, ModelIdentity(fold, shape, classes)).eval()


def reference(model: FoldedModel, images_nchw: torch.Tensor, mean: float = 0.5, std: float = 0.25) -> torch.Tensor:
    """FoldedModel.forward on normalised float images: what every backend must reproduce."""
    x = images_nchw.double() / 255 if images_nchw.dtype == torch.uint8 else images_nchw.double()
    with torch.no_grad():
        return model(((x - mean) / std).float())
