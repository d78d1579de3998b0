"""Analyse: walk the traced graph and give every tensor a channel axis made of spaces.

Each node is handled by the rule registered for its module class, function or tensor method
(rules.py). The first input's space is pinned to the images (folded to f*C); the model's
output (or the `classifier` module's output) to the logits (folded to f*K). The result lists
the widened layers in execution order, the splits whose literal sizes may need a graph edit
and the hard-coded view sizes to check once the widths are known.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from ..errors import ShapeError, UnsupportedOpError
from .rules import SplitSite, ViewCheck, find_rule, target_name
from .spaces import INPUT, OUTPUT, ChannelDesc, SpaceConflict, Spaces
from .trace import trace

_FRAME = re.compile(r'File "([^"]+)", line (\d+), in \S+\n(.*)')


@dataclass
class LayerRecord:
    """A widened layer (conv, linear, batchnorm, groupnorm): its module and channel axes."""

    name: str
    kind: str
    module: nn.Module
    in_desc: ChannelDesc
    out_desc: ChannelDesc


@dataclass
class Analysis:
    """What the graph says about channels; built by `analyse()`."""

    gm: fx.GraphModule
    spaces: Spaces = field(default_factory=Spaces)
    descs: dict[fx.Node, Any] = field(default_factory=dict)
    layers: dict[str, LayerRecord] = field(default_factory=dict)
    splits: list[SplitSite] = field(default_factory=list)
    view_checks: list[ViewCheck] = field(default_factory=list)
    input_shape: tuple[int, ...] = ()
    num_classes: int = 0

    # ---- helpers for rules -------------------------------------------------------------
    def where(self, node: fx.Node) -> str:
        """'node conv1 (call_module Conv2d) at file.py:12 `code`' for error messages."""
        text = f"node {node.name!r} ({node.op} {target_name(node, self.gm)})"
        frames = _FRAME.findall(node.meta.get("stack_trace") or "")
        user = [(path, line, code) for path, line, code in frames if "/torch/" not in path.replace(os.sep, "/")]
        if user:
            path, line, code = user[-1]
            text += f" at {os.path.basename(path)}:{line} `{code.strip()}`"
        return text

    def fail(self, node: fx.Node, message: str) -> UnsupportedOpError:
        """An UnsupportedOpError naming `node`."""
        return UnsupportedOpError(f"cannot fold {self.where(node)}: {message}")

    def shape(self, node: Any) -> tuple[int, ...] | None:
        """Shape of a tensor-valued node (from ShapeProp), else None."""
        meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    def desc(self, node: fx.Node, arg: Any) -> ChannelDesc:
        """The channel axis of tensor argument `arg` of `node` (raises if it has none)."""
        d = self.descs.get(arg) if isinstance(arg, fx.Node) else None
        if not isinstance(d, ChannelDesc):
            raise self.fail(node, f"expected a tensor with channels as argument, got {arg!r}")
        return d

    def module(self, node: fx.Node) -> nn.Module:
        return self.gm.get_submodule(node.target)

    def record_layer(self, node: fx.Node, kind: str, in_desc: ChannelDesc, out_desc: ChannelDesc) -> ChannelDesc:
        """Register a widened layer; a module called again gets its channel axes joined with its first call."""
        first = self.layers.get(node.target)
        if first is None:
            self.layers[node.target] = LayerRecord(node.target, kind, self.module(node), in_desc, out_desc)
            return out_desc
        self.spaces.join(first.in_desc, in_desc)
        self.spaces.join(first.out_desc, out_desc)
        return first.out_desc


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
                raise a.fail(node, "no folding rule for it. If it keeps channels as they are (elementwise, "
                                   f"pooling), call foldedcnn.transform.register_rule({_rule_key(node, a)}, "
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
