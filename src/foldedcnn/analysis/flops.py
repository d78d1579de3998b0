"""Per-layer FLOPs and sizes of Conv2d / Linear layers, in the paper's convention.

FLOPs = 2 x multiply-accumulates; a conv bias counts as one extra multiply-accumulate per
output element; a Linear bias is not counted (what the paper's thop counts gave).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class LayerStats:
    """One Conv2d or Linear layer, per folded input (batch of one)."""

    name: str
    kind: str  # "conv" | "linear"
    in_channels: int
    out_channels: int
    groups: int
    weight_params: int  # weights plus bias
    in_elements: int  # input activation elements per folded input
    out_elements: int  # output activation elements per folded input
    macs: int
    bias_macs: int

    @property
    def flops(self) -> int:
        """2 x (multiply-accumulates + conv-bias adds)."""
        return 2 * (self.macs + self.bias_macs)

    @property
    def intensity_flops(self) -> int:
        """FLOPs as the paper's intensity model counts them: 2 x MACs + one add per conv bias."""
        return 2 * self.macs + self.bias_macs

    def to_dict(self) -> dict:
        return {**asdict(self), "flops": self.flops}


def _conv_stats(name: str, m: nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> LayerStats:
    out_el = y[0].numel()
    kh, kw = m.kernel_size
    macs = out_el * (m.in_channels // m.groups) * kh * kw
    return LayerStats(
        name, "conv", m.in_channels, m.out_channels, m.groups,
        sum(p.numel() for p in m.parameters(recurse=False)),
        x[0].numel(), out_el, macs, out_el if m.bias is not None else 0,
    )


def _linear_stats(name: str, m: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> LayerStats:
    rows = x[0].numel() // m.in_features
    return LayerStats(
        name, "linear", m.in_features, m.out_features, 1,
        sum(p.numel() for p in m.parameters(recurse=False)),
        x[0].numel(), y[0].numel(), rows * m.in_features * m.out_features, 0,
    )


def _example(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    p = next(model.parameters(), None)
    device = p.device if p is not None else "cpu"
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    return torch.randn(1, *input_shape, device=device, dtype=dtype)


def layer_stats(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerStats]:
    """Stats of every Conv2d/Linear, in execution order, for one folded input of `input_shape`.

    `input_shape` is (f*C, H, W) of a folded input. A layer called twice is listed twice.
    """
    stats: list[LayerStats] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(m: nn.Module, args: tuple, y: torch.Tensor) -> None:
        x = args[0]
        if isinstance(m, nn.Conv2d):
            stats.append(_conv_stats(names[m], m, x, y))
        elif isinstance(m, nn.Linear):
            stats.append(_linear_stats(names[m], m, x, y))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(_example(model, input_shape))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return stats


def count_params(model: nn.Module) -> int:
    """All parameters of the model (weights, biases, norm affines)."""
    return sum(p.numel() for p in model.parameters())


def torch_counted_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one folded input as torch.utils.flop_counter counts them (no bias adds)."""
    was_training = model.training
    try:
        model.eval()
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(_example(model, input_shape))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
