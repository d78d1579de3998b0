"""Small learnable labelled image sets for the training tests (no data package needed)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Images:
    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]


def make_set(n: int, shape: tuple[int, int, int], num_classes: int, seed: int = 0) -> Images:
    """n uint8 images (n, C, H, W): a per-class colour plus noise; labels cycle through the classes."""
    g = torch.Generator().manual_seed(1234)
    templates = (torch.rand((num_classes, shape[0], 1, 1), generator=g) * 200).expand(num_classes, *shape)
    g.manual_seed(seed)
    labels = torch.arange(n) % num_classes
    labels = labels[torch.randperm(n, generator=g)]
    noise = torch.rand((n, *shape), generator=g) * 55
    return Images((templates[labels] + noise).to(torch.uint8), labels, [f"c{k}" for k in range(num_classes)])
