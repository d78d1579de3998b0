"""Rules: how each op maps its inputs' channel axes to its output's (see spaces.py).

A rule is `rule(analysis, node) -> ChannelDesc | list[ChannelDesc] | None`, registered for a
module class (matched along the MRO), a function (`torch.relu`, `operator.add`) or a tensor
method name (`"relu"`). Conv2d, Linear, BatchNorm and GroupNorm rules also record the layer so
that it is swapped for a wider one; every other op must work unchanged on wider tensors.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..errors import FoldedCNNError
from ._channel_state import Analysis, SplitSite, ViewCheck
from ._spaces import ChannelDesc

Rule = Callable[[Analysis, fx.Node], Any]
_RULES: dict[Any, Rule] = {}


def find_rule(node: fx.Node, gm: nn.Module) -> Rule | None:
    """The rule for a call_module / call_function / call_method node, or None."""
    if node.op == "call_module":
        for cls in type(gm.get_submodule(node.target)).__mro__:
            if cls in _RULES:
                return _RULES[cls]
        return None
    if node.op in ("call_function", "call_method"):
        try:
            return _RULES.get(node.target)
        except TypeError:  # an unhashable target
            return None
    return None


# ---- generic rules -------------------------------------------------------------------------
def passthrough(a: Analysis, node: fx.Node) -> ChannelDesc:
    """Channels unchanged: activations, pooling, dropout, identity, dtype/memory changes."""
    return a.desc(node, node.args[0])


def join(a: Analysis, node: fx.Node) -> ChannelDesc:
    """Elementwise op of tensors (add, sub, mul, div): operands' channel axes become one.

    (N, C, 1, 1) * (N, C, H, W) (squeeze-excitation scaling) joins too; scalars are ignored.
    """
    out = a.shape(node)
    operands = [x for x in node.args if isinstance(x, fx.Node) and isinstance(a.descs.get(x), ChannelDesc)]
    if not operands:
        raise a.fail(node, "expected at least one tensor with channels")
    first = a.descs[operands[0]]
    for x in operands:
        shape = a.shape(x)
        if len(shape) != len(out) or shape[1] != out[1]:
            raise a.fail(node, f"broadcasts a {tuple(shape)} tensor against {tuple(out)} across channels; "
                               "folding would mix images")
        a.spaces.join(first, a.descs[x])
    return first


def _dim(node: fx.Node, pos: int, name: str, default: Any) -> Any:
    if len(node.args) > pos:
        return node.args[pos]
    return node.kwargs.get(name, default)


# ---- widened layers ------------------------------------------------------------------------
def conv2d(a: Analysis, node: fx.Node) -> ChannelDesc:
    """Dense: new space; depthwise: the input's space (times its channel multiplier); grouped:
    new space, both sides kept divisible by the groups."""
    m = a.module(node)
    d = a.desc(node, node.args[0])
    if m.groups == 1:
        out = ChannelDesc((a.spaces.new(m.out_channels),))
    elif m.groups == m.in_channels:
        mult = m.out_channels // m.in_channels
        out = d if mult == 1 else ChannelDesc((a.spaces.new_derived(d, mult),))
    else:
        a.spaces.require_multiple(d, m.groups)
        out = ChannelDesc((a.spaces.new(m.out_channels),))
        a.spaces.require_multiple(out, m.groups)
    return a.record_layer(node, "conv", d, out)


def linear(a: Analysis, node: fx.Node) -> ChannelDesc:
    """Features in (channels x inner after a flatten), a new space out."""
    if len(a.shape(node.args[0])) != 2:
        raise a.fail(node, "Linear must see (N, features); flatten first with torch.flatten(x, 1)")
    out = ChannelDesc((a.spaces.new(a.module(node).out_features),))
    return a.record_layer(node, "linear", a.desc(node, node.args[0]), out)


def batchnorm(a: Analysis, node: fx.Node) -> ChannelDesc:
    d = a.desc(node, node.args[0])
    return a.record_layer(node, "batchnorm", d, d)


def groupnorm(a: Analysis, node: fx.Node) -> ChannelDesc:
    """Channels unchanged; widened channels stay divisible by num_groups (the groups are kept)."""
    d = a.desc(node, node.args[0])
    if len(a.shape(node.args[0])) != 4:
        raise a.fail(node, "GroupNorm is supported on (N, C, H, W) tensors")
    a.spaces.require_multiple(d, a.module(node).num_groups)
    return a.record_layer(node, "groupnorm", d, d)


# ---- shape ops -----------------------------------------------------------------------------
def flatten(a: Analysis, node: fx.Node) -> ChannelDesc:
    """flatten(x, 1): channels become features (channel-major, H*W elements each)."""
    d = a.desc(node, node.args[0])
    shape = a.shape(node.args[0])
    if node.op == "call_module":
        m = a.module(node)
        start, end = m.start_dim, m.end_dim
    else:
        start, end = _dim(node, 1, "start_dim", 0), _dim(node, 2, "end_dim", -1)
    start, end = start % len(shape), end % len(shape)
    if start >= 2:
        return d
    if start != 1 or end != len(shape) - 1:
        raise a.fail(node, "flattens the batch axis or only part of the feature axes; use torch.flatten(x, 1)")
    return ChannelDesc(d.parts, d.inner * math.prod(shape[2:]))


def view(a: Analysis, node: fx.Node) -> ChannelDesc:
    """view/reshape that keeps the batch axis: flatten to (N, features), or (N, C) -> (N, C, 1, 1).

    A channel/feature size written as an int literal (x.view(-1, 512)) is checked once the
    folded widths are known.
    """
    d = a.desc(node, node.args[0])
    s_in, s_out = a.shape(node.args[0]), a.shape(node)
    dims = list(node.args[1:]) if node.op == "call_method" else [node.args[1]] if len(node.args) > 1 else []
    if not dims:
        dims = [node.kwargs.get("shape", ())]
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = list(dims[0])
    if s_out == s_in:
        out = d
    elif len(s_out) == 2 and s_out[0] == s_in[0] and s_out[1] == math.prod(s_in[1:]):
        out = ChannelDesc(d.parts, d.inner * math.prod(s_in[2:]))
    elif len(s_in) == 2 and s_out[:2] == s_in and all(s == 1 for s in s_out[2:]) and d.inner == 1:
        out = d
    else:
        raise a.fail(node, f"reshapes {tuple(s_in)} to {tuple(s_out)}, mixing the channel axis with others; "
                           "keep the batch axis and flatten with torch.flatten(x, 1) or x.view(x.size(0), -1)")
    if len(dims) > 1 and isinstance(dims[1], int) and dims[1] != -1:
        a.view_checks.append(ViewCheck(node.name, out, dims[1], a.where(node)))
    return out


def cat(a: Analysis, node: fx.Node) -> ChannelDesc:
    """Concat on channels composes the parts' spaces; on any other axis joins them."""
    tensors = list(node.args[0])
    descs = [a.desc(node, t) for t in tensors]
    dim = _dim(node, 1, "dim", 0) % len(a.shape(tensors[0]))
    if dim != 1:
        for d in descs[1:]:
            a.spaces.join(descs[0], d)
        return descs[0]
    if len({d.inner for d in descs}) != 1:
        raise a.fail(node, "concatenates flattened features of different spatial sizes")
    return ChannelDesc(tuple(p for d in descs for p in d.parts), descs[0].inner)


def split(a: Analysis, node: fx.Node) -> list[ChannelDesc]:
    """split/chunk on channels cuts the spaces into pieces (literal split sizes are edited later)."""
    d = a.desc(node, node.args[0])
    metas = node.meta["tensor_meta"]
    dim = _dim(node, 2, "dim", 0) % len(metas[0].shape)
    if dim != 1:
        return [d] * len(metas)
    if d.inner != 1:
        raise a.fail(node, "splits flattened features; split the channels before flattening")
    pieces = a.spaces.split(d, [int(t.shape[1]) for t in metas])
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    location, literal = None, None
    if name == "split":
        key = "split_size" if node.op == "call_method" else "split_size_or_sections"
        location, literal = ("args[1]", node.args[1]) if len(node.args) > 1 else (f"kwargs[{key}]", node.kwargs[key])
        if not (isinstance(literal, int) or isinstance(literal, (list, tuple)) and all(isinstance(s, int)
                                                                                        for s in literal)):
            location, literal = None, None
    a.splits.append(SplitSite(node.name, pieces, location, literal))
    return pieces


def getitem(a: Analysis, node: fx.Node) -> ChannelDesc | None:
    """A piece of a split; indexing a tensor itself is not supported (it could slice channels)."""
    src = a.descs.get(node.args[0])
    if isinstance(src, list):
        return src[node.args[1]]
    if isinstance(src, ChannelDesc):
        raise a.fail(node, "indexes a tensor; use torch.split/chunk for channels, or pooling/flatten")
    return None


def reduce(a: Analysis, node: fx.Node) -> ChannelDesc:
    """mean/sum/amax over spatial axes (e.g. x.mean((2, 3)), a global pool) keeps channels."""
    d = a.desc(node, node.args[0])
    rank = len(a.shape(node.args[0]))
    dims = _dim(node, 1, "dim", None)
    dims = [dims] if isinstance(dims, int) else dims
    if not dims or any(x % rank in (0, 1) for x in dims):
        raise a.fail(node, "reduces over the batch or channel axis, which would mix folded images")
    return d


def softmax(a: Analysis, node: fx.Node) -> ChannelDesc:
    """softmax/log_softmax over a spatial axis keeps channels. Over the logits (N, K), a log_softmax (the last op
    of PyTorch's MNIST example) is done per image once folded (layout.log_softmax_per_image, a graph edit);
    a softmax there, or either over a feature map's channels, is refused: it would mix the folded images."""
    d = a.desc(node, node.args[0])
    rank = len(a.shape(node.args[0]))
    if node.op == "call_module":
        m = a.module(node)
        dim, log = getattr(m, "dim", -3), isinstance(m, nn.LogSoftmax)  # Softmax2d: over channels (-3)
    else:
        dim = _dim(node, 1, "dim", None)
        log = (node.target if node.op == "call_method" else getattr(node.target, "__name__", "")) == "log_softmax"
    dim = (0 if rank in (0, 1, 3) else 1) if dim is None else dim % rank  # torch's implicit dim
    if dim >= 2:
        return d
    if dim == 0:
        raise a.fail(node, "a softmax over the batch axis would mix the folded images")
    if rank != 2:
        raise a.fail(node, "a softmax over a feature map's channels would mix the folded images' channels; "
                           "fold_model cannot keep them apart")
    if not log:
        raise a.fail(node, "a softmax over the logits: foldedcnn trains with cross-entropy on the model's output, "
                           "which would apply softmax twice. Return the logits (or log_softmax(x, dim=1), folded per "
                           "image); foldedcnn's Engine, eval and run turn logits into probabilities per image")
    a.per_image.append((node.name, d))
    return d


def pad(a: Analysis, node: fx.Node) -> ChannelDesc:
    """F.pad of the spatial axes keeps channels; padding the channel or batch axis is refused."""
    d = a.desc(node, node.args[0])
    widths = _dim(node, 1, "pad", ())
    if len(widths) > 2 * (len(a.shape(node.args[0])) - 2):
        raise a.fail(node, "pads the channel or batch axis; pad only the spatial axes (a pad of up to 4 values)")
    return d


def prelu(a: Analysis, node: fx.Node) -> ChannelDesc:
    """nn.PReLU with one slope for all channels keeps them; one slope per channel would need widening."""
    if a.module(node).num_parameters != 1:
        raise a.fail(node, "a PReLU with a slope per channel is not widened by fold_model; use nn.PReLU() (one "
                           "slope) or nn.LeakyReLU")
    return a.desc(node, node.args[0])


# ---- registry ------------------------------------------------------------------------------
_NAMED = {"passthrough": passthrough, "join": join}


def register_rule(target: type[nn.Module] | Callable[..., Any] | str, rule: str | Rule) -> None:
    """Teach fold_model() an op.

    `target`: an nn.Module class (subclasses match too), a function (e.g. `torch.erf`) or a
    tensor-method name (e.g. `"erf"`). `rule`: "passthrough" (output channels are the first
    input's: elementwise maps, pooling, anything channel-wise), "join" (elementwise op of several
    same-shape tensors, whose channels must match), or a callable
    `rule(analysis, node) -> ChannelDesc` that reads its inputs with `analysis.desc(node, arg)`,
    shapes with `analysis.shape(arg)`, joins axes with `analysis.spaces.join(a, b)` and refuses
    with `raise analysis.fail(node, why)` (the rules in this file are examples).
    A module class with its own channel-sized parameters cannot be widened by a rule.
    """
    if isinstance(rule, str):
        if rule not in _NAMED:
            raise FoldedCNNError(f"unknown rule {rule!r}: use one of {sorted(_NAMED)} or a callable")
        rule = _NAMED[rule]
    if not (isinstance(target, (type, str)) or callable(target)):
        raise FoldedCNNError(f"cannot register a rule for {target!r}: give a module class, function or method name")
    _RULES[target] = rule


_ACTIVATIONS = [nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
                nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus]
_PASSTHROUGH_MODULES = [*_ACTIVATIONS, nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity, nn.MaxPool2d,
                        nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Upsample, nn.ZeroPad2d,
                        nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d]
_PASSTHROUGH_FUNCTIONS = [F.relu, F.relu_, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.mish,
                          F.hardswish, F.hardsigmoid, F.hardtanh, F.sigmoid, F.tanh, F.softplus, torch.relu,
                          torch.relu_, torch.sigmoid, torch.tanh, torch.clamp, F.dropout, F.dropout2d, F.max_pool2d,
                          F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.interpolate]
_PASSTHROUGH_METHODS = ["relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "clamp", "clamp_", "contiguous",
                        "clone", "float", "to", "detach"]
_JOIN = [operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd, operator.isub, operator.imul,
         operator.itruediv, torch.add, torch.sub, torch.mul, torch.div,
         "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_"]

for _t in [*_PASSTHROUGH_MODULES, *_PASSTHROUGH_FUNCTIONS, *_PASSTHROUGH_METHODS]:
    register_rule(_t, passthrough)
for _t in _JOIN:
    register_rule(_t, join)
for _t, _r in [(nn.Conv2d, conv2d), (nn.Linear, linear), (nn.BatchNorm1d, batchnorm), (nn.BatchNorm2d, batchnorm),
               (nn.GroupNorm, groupnorm), (nn.Flatten, flatten), (torch.flatten, flatten), ("flatten", flatten),
               ("view", view), ("reshape", view), (torch.reshape, view), (torch.cat, cat), (torch.concat, cat),
               (torch.split, split), ("split", split), (torch.chunk, split), ("chunk", split),
               (operator.getitem, getitem), (torch.mean, reduce), ("mean", reduce), ("sum", reduce),
               ("amax", reduce), (torch.sum, reduce), (torch.amax, reduce), (torch.amin, reduce), ("amin", reduce),
               (F.pad, pad), (nn.PReLU, prelu), (F.softmax, softmax), (F.log_softmax, softmax),
               (torch.softmax, softmax), (torch.log_softmax, softmax), ("softmax", softmax),
               ("log_softmax", softmax), (nn.Softmax, softmax), (nn.LogSoftmax, softmax), (nn.Softmax2d, softmax)]:
    register_rule(_t, _r)
