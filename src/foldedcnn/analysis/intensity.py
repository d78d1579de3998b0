"""Arithmetic intensity (paper's model) and a whole-model summary at a given fold and batch.

For each Conv2d/Linear: FLOPs (2 x MACs plus one FLOP per conv-bias add; this reproduces the
paper's published intensities to the last digit, while its FLOP counts charge a bias add as a
multiply-accumulate) and bytes = bytes_per_element x
(weights + input activations + output activations); the model's intensity at a batch of
N images (N/f folded inputs) is total FLOPs / total bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from ..folded import FoldedModel
from ..identity import identity_of
from .flops import LayerStats, count_params, layer_stats
from .roofline import check_positive


def flops_at(layers: Sequence[LayerStats], num_images: float, fold: int) -> float:
    """Intensity-model FLOPs for `num_images` images, i.e. num_images / fold folded inputs."""
    return sum(layer.intensity_flops for layer in layers) * num_images / fold


def bytes_at(layers: Sequence[LayerStats], num_images: float, fold: int, bytes_per_element: float = 2) -> float:
    """Bytes moved for `num_images` images: weights once, activations once per folded input."""
    inputs = num_images / fold
    elements = sum(la.weight_params + inputs * (la.in_elements + la.out_elements) for la in layers)
    return bytes_per_element * elements


def intensity_at(layers: Sequence[LayerStats], num_images: float, fold: int, bytes_per_element: float = 2) -> float:
    """Arithmetic intensity (FLOP/byte) at a batch of `num_images` images."""
    check_positive(num_images=num_images, bytes_per_element=bytes_per_element)
    return flops_at(layers, num_images, fold) / bytes_at(layers, num_images, fold, bytes_per_element)


def intensity_limit(layers: Sequence[LayerStats], bytes_per_element: float = 2) -> float:
    """Intensity as the batch grows without bound (weights amortised away)."""
    flops = sum(la.intensity_flops for la in layers)
    return flops / (bytes_per_element * sum(la.in_elements + la.out_elements for la in layers))


@dataclass
class ModelAnalysis:
    """FLOPs, params and intensity of one model at one fold."""

    name: str
    fold: int
    input_shape: tuple[int, int, int]  # folded input (f*C, H, W)
    params: int
    layers: list[LayerStats] = field(repr=False)

    @property
    def flops_per_input(self) -> int:
        return sum(la.flops for la in self.layers)

    @property
    def flops_per_image(self) -> float:
        return self.flops_per_input / self.fold

    def intensity(self, num_images: float = 1024, bytes_per_element: float = 2) -> float:
        return intensity_at(self.layers, num_images, self.fold, bytes_per_element)

    def bytes_per_image(self, num_images: float = 1024, bytes_per_element: float = 2) -> float:
        return bytes_at(self.layers, num_images, self.fold, bytes_per_element) / num_images

    def intensity_limit(self, bytes_per_element: float = 2) -> float:
        return intensity_limit(self.layers, bytes_per_element)


def analyze_model(model: nn.Module, input_shape: tuple[int, int, int] | None = None, name: str = "") -> ModelAnalysis:
    """Analyse a folded network (N, f*C, H, W) -> (N, f*K) that carries its identity (zoo networks and
    FoldedModels do; a FoldedModel's network is analysed).

    `input_shape` is the per-image (C, H, W); it defaults to the identity's.
    """
    ident = identity_of(model)
    network = model.network if isinstance(model, FoldedModel) else model
    fold = ident.fold
    c, h, w = input_shape if input_shape is not None else ident.input_shape
    folded = (fold * c, h, w)
    return ModelAnalysis(
        name=name or ident.zoo or type(network).__name__,
        fold=fold,
        input_shape=folded,
        params=count_params(network),
        layers=layer_stats(network, folded),
    )


def analyze_zoo_model(name: str, fold: int = 1, width_mult: float | None = None,
                      align: int | None = None) -> ModelAnalysis:
    """Analyse zoo model `name` at `fold` (widths as in create_model; align=1 for the paper's numbers)."""
    from ..models import create_model

    return analyze_model(create_model(name, fold, width_mult, align), name=name)
