"""CIFAR ResNet-18 (64-128-256-512, 3x3 stem, no max-pool), folded by widening every stage."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import FoldError
from ..identity import IdentifiedNetwork
from ._registry import ModelSpec, register_model
from .widths import scaled_width


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity or 1x1-conv shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetCIFAR(IdentifiedNetwork, nn.Module):
    """(N, f*3, 32, 32) -> (N, f*K) with stage widths `widths` and `blocks` blocks per stage."""

    def __init__(self, in_channels: int, widths: list[int], blocks: list[int], num_outputs: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        stages: list[nn.Module] = []
        c = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(n):
                stages.append(BasicBlock(c, w, 2 if i > 0 and j == 0 else 1))
                c = w
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def check_square_fold(fold: int) -> None:
    """ResNet folding widens by sqrt(f) exactly: only perfect squares are allowed."""
    if math.isqrt(fold) ** 2 != fold:
        raise FoldError(
            f"resnet18 needs a fold whose square root is an integer (1, 4, 9, 16, ...), got {fold}"
        )


def _build(*, fold: int, width_mult, align: int | None, num_classes: int, block_of: int = 1,
           min_block: int | None = None) -> ResNetCIFAR:
    widths = [scaled_width(w, fold, width_mult, align, block_of, min_block) for w in (64, 128, 256, 512)]
    return ResNetCIFAR(3 * fold, widths, [2, 2, 2, 2], num_classes * fold)


for _k in (10, 100):
    register_model(
        ModelSpec(
            name=f"resnet18-cifar{_k}",
            family="resnet",
            input_shape=(3, 32, 32),
            num_classes=_k,
            build=_build,
            description=f"CIFAR ResNet-18 for {_k} classes",
            check_fold=check_square_fold,
        )
    )
