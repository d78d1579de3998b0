"""The paper's game-scraping CNNs: read a HUD number from a small crop of a game stream."""

from __future__ import annotations

from functools import partial

from torch import nn

from ..errors import ShapeError
from ..identity import IdentifiedNetwork
from ._registry import ModelSpec, register_model
from .widths import scaled_width


def _pooled(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


class GameCNN(IdentifiedNetwork, nn.Module):
    """(N, f*3, H, W) -> (N, f*K).

    stem: conv3x3(width) relu maxpool(3, 2); `num_units` units of `convs_per_unit`
    [conv3x3(width) relu] then maxpool(3, 1); head: conv3x3(narrow) relu maxpool(3, 2);
    flatten; Linear(num_outputs). Convs use padding 1 and bias.
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        narrow_width: int,
        num_outputs: int,
        input_hw: tuple[int, int],
        num_units: int = 1,
        convs_per_unit: int = 3,
    ) -> None:
        super().__init__()
        h, w = input_hw
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2)]
        h, w = _pooled(h, 3, 2), _pooled(w, 3, 2)
        for _ in range(num_units):
            for _ in range(convs_per_unit):
                layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
            layers.append(nn.MaxPool2d(3, 1))
            h, w = _pooled(h, 3, 1), _pooled(w, 3, 1)
        layers += [nn.Conv2d(width, narrow_width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2)]
        h, w = _pooled(h, 3, 2), _pooled(w, 3, 2)
        if h < 1 or w < 1:
            raise ShapeError(f"input {input_hw} is too small for {num_units} conv units")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(narrow_width * h * w, num_outputs))

    def forward(self, x):
        return self.classifier(self.features(x))


def build_game_cnn(
    input_hw: tuple[int, int],
    num_classes: int,
    num_units: int = 1,
    *,
    fold: int = 1,
    width_mult: float | None = None,
    align: int | None = None,
    block_of: int = 1,
    min_block: int | None = None,
    base_width: int = 32,
    base_narrow: int = 8,
    convs_per_unit: int = 3,
) -> GameCNN:
    """A game CNN for `fold`: widths 32 and 8 scaled by sqrt(fold) (or `width_mult`), at least
    min(w, min_block) per image; see widths.scaled_width."""
    return GameCNN(
        in_channels=3 * fold,
        width=scaled_width(base_width, fold, width_mult, align, block_of, min_block),
        narrow_width=scaled_width(base_narrow, fold, width_mult, align, block_of, min_block),
        num_outputs=num_classes * fold,
        input_hw=input_hw,
        num_units=num_units,
        convs_per_unit=convs_per_unit,
    )


GAME_TASKS = {
    # name: ((H, W), classes, conv units, what it reads)
    "game-lol-gold-fraction": ((22, 52), 11, 1, 'digit Z of "XY.Zk" gold (0-9, other)'),
    "game-lol-gold-int": ((22, 52), 111, 1, 'integer part of "XY.Zk" gold (0-9, 00-99, other)'),
    "game-lol-timer-minutes": ((15, 35), 62, 1, 'minutes of a "MM:SS" timer (00-60, other)'),
    "game-apex-squad-count": ((19, 25), 22, 1, "squads-left counter (0-20, other)"),
    "game-sot-coin-count": ((17, 40), 15, 1, "coin counter (1-14, other)"),
    "game-sot-timer": ((22, 30), 27, 2, "timer value (0-25, other)"),
}

for _name, (_hw, _k, _units, _desc) in GAME_TASKS.items():
    register_model(
        ModelSpec(
            name=_name,
            family="game",
            input_shape=(3, *_hw),
            num_classes=_k,
            build=partial(build_game_cnn, _hw, num_units=_units),
            description=_desc,
        )
    )
