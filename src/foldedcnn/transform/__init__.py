"""Fold any CNN: trace (torch.fx + ShapeProp) -> analyse channel spaces -> plan widths -> swap modules.

`fold_model(model, fold, example_input)` returns a FoldedModel whose `.plan` (a FoldPlan) says
every layer's folded width; `block_diagonal_fold` builds the exact f-copies check of a fold; `warm_start` initialises a
folded model from the trained original; `narrow_model` / `fill_blocks` build one image's block as a model of its
own and copy it (trained) into every block.
"""

from ._fold import fold_model, rebuild_from_architecture
from ._narrow import fill_blocks, narrow_model, narrow_widths
from ._sources import ModelRef, build_source, load_factory, module_source
from ._spaces import ChannelDesc
from ._warm_start import select_channels, warm_start
from .block_diagonal import block_diagonal_fold, fill_block_diagonal
from .plan import EditPlan, FoldPlan, LayerPlan, SpacePlan
from .rules import register_rule

__all__ = [
    "ChannelDesc",
    "EditPlan",
    "FoldPlan",
    "LayerPlan",
    "ModelRef",
    "SpacePlan",
    "block_diagonal_fold",
    "build_source",
    "fill_block_diagonal",
    "fill_blocks",
    "fold_model",
    "load_factory",
    "module_source",
    "narrow_model",
    "narrow_widths",
    "rebuild_from_architecture",
    "register_rule",
    "select_channels",
    "warm_start",
]
