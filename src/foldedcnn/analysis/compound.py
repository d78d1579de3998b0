"""The paper's comparison: compound scaling (EfficientNet) of a game CNN one step down.

One step down divides depth by 1.2, width by 1.1 and resolution by 1.15. It cuts FLOPs but
also lowers arithmetic intensity, whereas folding raises it.
"""

from __future__ import annotations

from ..identity import ModelIdentity
from ..models.game import GAME_TASKS, build_game_cnn
from .intensity import ModelAnalysis, analyze_model

DEPTH, WIDTH, RESOLUTION = 1.2, 1.1, 1.15


def compound_scaled_game_model(name: str = "game-lol-gold-int") -> ModelAnalysis:
    """Analysis of zoo game model `name` scaled one compound step down.

    Convs per unit round(3 / 1.2) = 2, widths floor(32 / 1.1) = 29 and floor(8 / 1.1) = 7,
    input H and W divided by 1.15 (rounded).
    """
    (h, w), classes, units, _ = GAME_TASKS[name]
    hw = (round(h / RESOLUTION), round(w / RESOLUTION))
    model = build_game_cnn(
        hw, classes, units,
        width_mult=1 / WIDTH,
        convs_per_unit=max(1, round(3 / DEPTH)),
    )
    model.identity = ModelIdentity(1, (3, *hw), classes)
    return analyze_model(model, name=f"{name} (compound -1)")

