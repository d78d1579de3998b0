"""What the traced graph says about channels: the state rules read and write while walking it.

`Analysis` holds the graph, the channel spaces of every tensor node, the widened layers, the
channel splits, the view sizes to check and the log_softmax ops over the logits (done per image once
folded); rules (rules.py) fill it, `_channel_graph.analyse` drives them. Kept apart from both so
that neither imports the other.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from torch import fx, nn

from ..errors import UnsupportedOpError
from ._spaces import ChannelDesc, Spaces


def target_name(node: fx.Node, gm: nn.Module) -> str:
    """Readable name of what a node calls: a module class, a function or `.method`."""
    if node.op == "call_module":
        return type(gm.get_submodule(node.target)).__name__
    if node.op == "call_method":
        return f".{node.target}"
    return getattr(node.target, "__name__", str(node.target))


@dataclass
class SplitSite:
    """A split/chunk on channels: its pieces and where its literal size argument sits (if any)."""

    node: str
    pieces: list[ChannelDesc]
    location: str | None  # "args[1]" or "kwargs[name]"
    literal: Any


@dataclass
class ViewCheck:
    """A view/reshape whose channel/feature size is an int literal: it must still hold after folding."""

    node: str
    desc: ChannelDesc
    literal: int
    where: str


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
    per_image: list[tuple[str, ChannelDesc]] = field(default_factory=list)  # log_softmax nodes over the logits
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
