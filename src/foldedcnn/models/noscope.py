"""NoScope's specialized CNNs (Kang et al., VLDB 2017): 3x3 convs with bias, max-pool, two FCs."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from torch import nn

from ..identity import IdentifiedNetwork
from ._registry import ModelSpec, register_model
from .widths import scaled_width


class NoScopeCNN(IdentifiedNetwork, nn.Module):
    """(N, f*3, 50, 50) -> (N, f*2). Each block is [conv3x3 relu conv3x3 relu maxpool2]."""

    def __init__(
        self,
        in_channels: int,
        block_widths: Sequence[int],
        fc_width: int,
        num_outputs: int,
        input_hw: tuple[int, int] = (50, 50),
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        h, w = input_hw
        for width in block_widths:
            layers += [
                nn.Conv2d(c, width, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            c, h, w = width, h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c * h * w, fc_width), nn.ReLU(), nn.Linear(fc_width, num_outputs)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def _build(block_widths: Sequence[int], fc_width: int, *, fold: int, width_mult, align: int | None,
           num_classes: int, block_of: int = 1, min_block: int | None = None) -> NoScopeCNN:
    def widen(w: int) -> int:
        return scaled_width(w, fold, width_mult, align, block_of, min_block)

    return NoScopeCNN(3 * fold, [widen(w) for w in block_widths], widen(fc_width), num_classes * fold)


_NOSCOPE = {
    "noscope-coral": ((16,), 128, "coral reef camera; conv16 x2, FC 128"),
    "noscope-night": ((16,), 128, "night-street camera; conv16 x2, FC 128"),
    "noscope-taipei": ((64,), 32, "Taipei intersection; conv64 x2, FC 32"),
    "noscope-roundabout": ((32, 64), 32, "roundabout; conv32 x2, conv64 x2, FC 32"),
}

for _name, (_blocks, _fc, _desc) in _NOSCOPE.items():
    register_model(
        ModelSpec(
            name=_name,
            family="noscope",
            input_shape=(3, 50, 50),
            num_classes=2,
            build=partial(_build, _blocks, _fc),
            description=_desc,
        )
    )
