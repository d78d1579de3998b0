"""Per-channel input normalisation: statistics of the train split, applied as (x/255 - mean) / std."""

from __future__ import annotations

import torch


def compute_normalization(images: torch.Tensor, chunk: int = 4096) -> dict[str, list[float]]:
    """Per-channel mean and std of uint8 images (N, C, H, W) scaled to [0, 1]."""
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


def normalize(images: torch.Tensor, normalization: dict[str, list[float]]) -> torch.Tensor:
    """uint8 (or [0, 255] float) images (N, C, H, W) -> float32 (N, C, H, W) network input."""
    mean = torch.tensor(normalization["mean"], dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(normalization["std"], dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.to(torch.float32) / 255.0 - mean) / std
