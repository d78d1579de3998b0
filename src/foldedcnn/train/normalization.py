"""Per-channel input normalisation: statistics of the train split, applied as (x/255 - mean) / std."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import ShapeError


def compute_normalization(images: torch.Tensor, chunk: int = 4096) -> dict[str, list[float]]:
    """Per-channel mean and std of uint8 images (N, C, H, W) scaled to [0, 1]; N must be >= 1."""
    if images.shape[0] == 0:
        raise ShapeError("cannot compute a normalisation from 0 images; the train split is empty")
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for i in range(0, images.shape[0], chunk):
        x = images[i : i + chunk].to(torch.float64) / 255.0
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt().clamp_min(1e-3)
    return {"mean": mean.tolist(), "std": std.tolist()}


def normalizer(normalization: dict[str, list[float]], device: str | torch.device = "cpu"
               ) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function mapping uint8 (or [0, 255] float) images (N, C, H, W) on `device` to float32 network
    input (N, C, H, W); its mean and std tensors are built once, not per batch."""
    mean = torch.tensor(normalization["mean"], dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(normalization["std"], dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def apply(images: torch.Tensor) -> torch.Tensor:
        return (images.to(torch.float32) / 255.0 - mean) / std

    return apply


def normalize(images: torch.Tensor, normalization: dict[str, list[float]]) -> torch.Tensor:
    """uint8 (or [0, 255] float) images (N, C, H, W) -> float32 (N, C, H, W) network input (one batch)."""
    return normalizer(normalization, images.device)(images)
