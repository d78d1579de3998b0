"""Apply a plan: swap each widened layer of a deep copy for a new one of the planned width.

The user's class and forward() stay as they are. Every hyperparameter (kernel, stride, padding,
dilation, padding_mode, bias, eps, momentum, affine, track_running_stats, device, dtype) and the
`.training` flag are copied; weights are freshly initialised. Only literal split sizes, which no
module swap can change, and a log_softmax over the logits (done per image once folded) are edited in the fx
graph: the result is then a torch.fx.GraphModule and a warning says so.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

from torch import fx, nn

from ..errors import FoldedCNNError
from ..layout import log_softmax_per_image
from ._trace import trace_graph
from .plan import PER_IMAGE, EditPlan, FoldPlan, LayerPlan


def _conv(m: nn.Conv2d, lp: LayerPlan) -> nn.Module:
    return type(m)(lp.folded_in, lp.folded_out, m.kernel_size, stride=m.stride, padding=m.padding,
                   dilation=m.dilation, groups=lp.folded_groups, bias=m.bias is not None,
                   padding_mode=m.padding_mode, **_factory(m))


def _linear(m: nn.Linear, lp: LayerPlan) -> nn.Module:
    return type(m)(lp.folded_in, lp.folded_out, bias=m.bias is not None, **_factory(m))


def _factory(m: nn.Module) -> dict:
    p = next(iter(m.parameters(recurse=False)), None)
    if p is None:
        p = next(iter(m.buffers(recurse=False)), None)
    return {} if p is None else {"device": p.device, "dtype": p.dtype if p.is_floating_point() else None}


def _batchnorm(m: nn.modules.batchnorm._BatchNorm, lp: LayerPlan) -> nn.Module:
    return type(m)(lp.folded_out, eps=m.eps, momentum=m.momentum, affine=m.affine,
                   track_running_stats=m.track_running_stats, **_factory(m))


def _groupnorm(m: nn.GroupNorm, lp: LayerPlan) -> nn.Module:
    return type(m)(lp.folded_groups, lp.folded_out, eps=m.eps, affine=m.affine, **_factory(m))


_BUILDERS = {"conv": _conv, "linear": _linear, "batchnorm": _batchnorm, "groupnorm": _groupnorm}


def _swap(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, new)


def _apply_edit(graph: fx.Graph, node: fx.Node, edit: EditPlan) -> None:
    if edit.location == PER_IMAGE:  # the op's input is its first argument (module, function or method alike)
        with graph.inserting_after(node):
            per_image = graph.call_function(log_softmax_per_image, (node.args[0], edit.new))
        node.replace_all_uses_with(per_image)
        graph.erase_node(node)
    elif edit.location.startswith("args["):
        i = int(edit.location[5:-1])
        node.args = (*node.args[:i], edit.new, *node.args[i + 1:])
    else:
        node.kwargs = {**node.kwargs, edit.location[7:-1]: edit.new}


def _edit_graph(net: nn.Module, edits: list[EditPlan], leaf_modules: Sequence[type[nn.Module]]) -> fx.GraphModule:
    graph = trace_graph(net, leaf_modules)
    nodes = {n.name: n for n in graph.nodes}
    for edit in edits:
        if edit.node not in nodes:
            raise FoldedCNNError(f"graph edit: node {edit.node!r} not found when re-tracing the model")
        _apply_edit(graph, nodes[edit.node], edit)
    gm = fx.GraphModule(net, graph, class_name=f"Folded{type(net).__name__}")
    gm.train(net.training)
    for name, m in gm.named_modules():  # fx recreates intermediate containers: keep the original flags
        if name:
            m.training = net.get_submodule(name).training
    warnings.warn(
        "fold_model: the traced graph was edited ("
        + "; ".join(e.describe() for e in edits)
        + f"); the folded network is a torch.fx.GraphModule, not {type(net).__name__}",
        stacklevel=4,
    )
    return gm


def apply_plan(model: nn.Module, plan: FoldPlan, leaf_modules: Sequence[type[nn.Module]] = ()) -> nn.Module:
    """A folded copy of `model`: (N, f*C, H, W) -> (N, f*K), widths as in `plan`, fresh weights."""
    net = copy.deepcopy(model)
    for lp in plan.layers:
        old = net.get_submodule(lp.name)
        new = _BUILDERS[lp.kind](old, lp)
        new.train(old.training)
        _swap(net, lp.name, new)
    return _edit_graph(net, plan.edits, leaf_modules) if plan.edits else net
