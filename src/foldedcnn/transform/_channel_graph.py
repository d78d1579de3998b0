"""Analyse: walk the traced graph and give every tensor a channel axis made of spaces.

Each node is handled by the rule registered for its module class, function or tensor method
(rules.py). The first input's space is pinned to the images (folded to f*C); the model's
output (or the `classifier` module's output) to the logits (folded to f*K). The result lists
the widened layers in execution order, the splits whose literal sizes may need a graph edit
and the hard-coded view sizes to check once the widths are known.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import fx, nn

from ..errors import ShapeError, UnsupportedOpError
from ._channel_state import Analysis
from ._spaces import INPUT, OUTPUT, ChannelDesc, SpaceConflict
from ._trace import trace
from .rules import find_rule


def _run(a: Analysis, classifier: str | None) -> None:
    output: ChannelDesc | None = None
    for node in a.gm.graph.nodes:
        if node.op == "placeholder":
            shape = a.shape(node)
            if a.input_shape or shape is None:
                raise a.fail(node, "fold_model() supports models with one image input (B, C, H, W)")
            a.input_shape = shape[1:]
            a.descs[node] = ChannelDesc((a.spaces.new(shape[1], INPUT),))
        elif node.op == "output":
            result = node.args[0]
            if not isinstance(a.descs.get(result), ChannelDesc) or len(a.shape(result) or ()) != 2:
                raise a.fail(node, "the model must return one tensor of logits (N, K)")
            output = a.descs[result]
        elif node.op == "get_attr":
            raise a.fail(node, "uses a parameter or buffer directly (a functional layer): use an nn.Module "
                               "(nn.Conv2d, nn.Linear, ...) so it can be swapped for a wider one")
        else:
            rule = find_rule(node, a.gm)
            if rule is None:
                if "tensor_meta" not in node.meta:
                    a.descs[node] = None  # sizes, shapes and other plain values
                    continue
                raise a.fail(node, "no folding rule for it. If it treats each channel on its own (elementwise, "
                                   "pooling; not a softmax or norm across channels, which would mix the folded "
                                   f"images), call foldedcnn.transform.register_rule({_rule_key(node, a)}, "
                                   "'passthrough'); if it is a module torch.fx should not trace into, pass "
                                   "fold_model(..., leaf_modules=(ThatModule,)) and register a rule for it")
            try:
                a.descs[node] = rule(a, node)
            except SpaceConflict as exc:
                raise a.fail(node, str(exc)) from exc
    assert output is not None  # fx graphs always end with an output node
    _pin_output(a, output, classifier)


def _rule_key(node: fx.Node, a: Analysis) -> str:
    if node.op == "call_method":
        return repr(node.target)
    if node.op == "call_module":
        return type(a.module(node)).__name__
    module = getattr(node.target, "__module__", None) or ""
    return f"{module.lstrip('_')}.{node.target.__name__}" if module else repr(node.target)


def _pin_output(a: Analysis, output: ChannelDesc, classifier: str | None) -> None:
    if classifier is not None:
        if classifier not in a.layers or a.layers[classifier].kind not in ("conv", "linear"):
            convs = [n for n, r in a.layers.items() if r.kind in ("conv", "linear")]
            raise UnsupportedOpError(f"classifier={classifier!r} is not a Conv2d/Linear of the model; "
                                     f"those are {convs}")
        output = a.layers[classifier].out_desc
    leaves = a.spaces.resolve(output)
    if len(leaves) != 1 or output.inner != 1:
        raise UnsupportedOpError("the logits must come from one layer (the classifier), not a concat, split or "
                                 "flattened feature map; name it with classifier=")
    a.num_classes = a.spaces.size[leaves[0]]
    try:
        a.spaces.union(leaves[0], a.spaces.new(a.num_classes, OUTPUT))
    except SpaceConflict as exc:
        raise UnsupportedOpError(f"the logits' channels are tied to other channels: {exc}") from exc
    for name, desc in a.per_image:
        if [a.spaces.find(s) for s in a.spaces.resolve(desc)] != [a.spaces.find(leaves[0])]:
            raise UnsupportedOpError(f"cannot fold node {name!r}: a log_softmax over features that are not the logits "
                                     "would mix the folded images (only the logits' is done per image)")


def analyse(model: nn.Module, example_input: torch.Tensor, *, classifier: str | None = None,
            leaf_modules: Sequence[type[nn.Module]] = ()) -> Analysis:
    """Trace `model` on `example_input` (B, C, H, W) and assign channel spaces to every tensor.

    Raises UnsupportedOpError for an op without a rule, ShapeError if the input does not fit.
    """
    a = Analysis(trace(model, example_input, leaf_modules))
    _run(a, classifier)
    if not a.layers:
        raise ShapeError("the model has no Conv2d or Linear layer to fold")
    return a
