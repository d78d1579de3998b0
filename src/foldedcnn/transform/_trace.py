"""Trace a model with torch.fx and record every tensor's shape (ShapeProp) on its node."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import ShapeError, UnsupportedOpError

#: Layers that fold_model() widens; always traced as leaves, subclasses included.
WIDENED_LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)


class FoldTracer(fx.Tracer):
    """fx tracer that keeps the widened layers and the user's `leaf_modules` as single nodes."""

    def __init__(self, leaf_modules: Sequence[type[nn.Module]] = ()) -> None:
        super().__init__()
        self.leaf_types = (*WIDENED_LAYERS, *leaf_modules)
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self.leaf_types) or super().is_leaf_module(m, module_qualified_name)


def trace_graph(model: nn.Module, leaf_modules: Sequence[type[nn.Module]] = ()) -> fx.Graph:
    """The fx graph of `model.forward`; code fx cannot trace raises UnsupportedOpError."""
    try:
        return FoldTracer(leaf_modules).trace(model)
    except Exception as exc:  # fx raises TraceError, TypeError, RuntimeError... for untraceable code
        raise UnsupportedOpError(
            f"torch.fx cannot trace {type(model).__name__}.forward ({type(exc).__name__}: {exc}). Data-dependent "
            "control flow must sit inside a module: pass fold_model(..., leaf_modules=(ThatModule,)) and "
            "describe it with foldedcnn.transform.register_rule(ThatModule, 'passthrough')"
        ) from exc


def trace(model: nn.Module, example_input: torch.Tensor,
          leaf_modules: Sequence[type[nn.Module]] = ()) -> fx.GraphModule:
    """A GraphModule of an eval-mode copy of `model`, each node carrying `meta["tensor_meta"]`.

    `example_input` is one unfolded batch (B, C, H, W); the model itself is not modified.
    """
    if not isinstance(example_input, torch.Tensor) or example_input.dim() != 4:
        shape = tuple(example_input.shape) if isinstance(example_input, torch.Tensor) else type(example_input)
        raise ShapeError(f"example_input must be an image batch (B, C, H, W), got {shape}")
    copied = copy.deepcopy(model).eval()
    try:
        with torch.no_grad():
            copied(example_input)
    except Exception as exc:  # any error of the user's forward on this input
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ShapeError(
            f"the model cannot run on example_input of shape {tuple(example_input.shape)}: {first_line}"
        ) from exc
    gm = fx.GraphModule(copied, trace_graph(copied, leaf_modules))
    with torch.no_grad():
        ShapeProp(gm).propagate(example_input)
    return gm
