"""Roofline bound: images/s <= min(peak / FLOPs per image, bandwidth / bytes per image)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import FoldedCNNError


def check_positive(**values: float) -> None:
    """Raise FoldedCNNError naming the first of `values` that is not > 0."""
    for name, v in values.items():
        if v <= 0:
            raise FoldedCNNError(f"{name} must be > 0, got {v}")


@dataclass(frozen=True)
class RooflineBound:
    """The roofline's ceiling for a workload and which side of the roof sets it."""

    images_per_s: float
    binding: str  # "compute" | "memory"
    compute_images_per_s: float
    memory_images_per_s: float


def roofline_bound(
    flops_per_image: float, bytes_per_image: float, peak_flops: float, bandwidth: float
) -> RooflineBound:
    """Upper bound on images/s from peak FLOP/s and memory bandwidth (bytes/s)."""
    check_positive(flops_per_image=flops_per_image, bytes_per_image=bytes_per_image, peak_flops=peak_flops,
                   bandwidth=bandwidth)
    compute = peak_flops / flops_per_image
    memory = bandwidth / bytes_per_image
    return RooflineBound(min(compute, memory), "compute" if compute <= memory else "memory", compute, memory)


def ridge_point(peak_flops: float, bandwidth: float) -> float:
    """Arithmetic intensity (FLOP/byte) above which a workload is compute-bound."""
    return peak_flops / bandwidth
