"""Read a folded network as a plain-data fused program, or say which layer makes that impossible.

    extract_program(network, input_shape) -> FusedProgram(features=(ConvOp | PoolOp, ...), classifier=(LinearOp, ...))

The network is traced with torch.fx (nn.Sequential, zoo modules and fold_model's GraphModules all
trace) and must be one chain: Conv2d (any kernel, stride 1, dilation 1, groups 1, zero padding)
with optional ReLU, MaxPool2d (no padding, no ceil mode) anywhere after the first conv, then a flatten and a chain of
Linear layers with optional ReLU. Identity and Dropout (the network runs in eval mode) are skipped.
A ReLU after a max-pool is moved onto the conv before it (max and ReLU commute), and a ReLU after the
flatten onto the last conv. Anything else raises UnfusableModelError naming the node. Pure torch: no Triton here.

The first Linear's columns are permuted from PyTorch's (C, H, W) flatten order to the (H, W, C)
order of the kernels' NHWC feature maps, so the program computes exactly the network's logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn

from ...errors import FoldedCNNError


class UnfusableModelError(FoldedCNNError):
    """A network the fused Triton kernels cannot compute exactly; the message names the layer and why."""


@dataclass(frozen=True)
class ConvOp:
    """Conv2d (stride 1) + bias + optional ReLU: (Cin, H, W) -> (Cout, H + 2*ph - kh + 1, W + 2*pw - kw + 1).

    weight (Cout, Cin, kh, kw), bias (Cout,) (zeros when the layer has none), float32 on the CPU.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    padding: tuple[int, int]
    relu: bool
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    name: str


@dataclass(frozen=True)
class PoolOp:
    """MaxPool2d without padding: (C, H, W) -> (C, (H - kh) // sh + 1, (W - kw) // sw + 1)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    name: str


@dataclass(frozen=True)
class LinearOp:
    """Linear + optional ReLU: weight (N, K), bias (N,), float32 on the CPU; K in the previous op's order."""

    weight: torch.Tensor
    bias: torch.Tensor
    relu: bool
    name: str


@dataclass(frozen=True)
class FusedProgram:
    """A folded network as kernels see it: NHWC feature ops, then the classifier on (H, W, C)-flattened features."""

    input_shape: tuple[int, int, int]
    features: tuple[ConvOp | PoolOp, ...]
    classifier: tuple[LinearOp, ...]

    def describe(self) -> str:
        """One line, e.g. "conv3x3(12->32)+relu pool3/2 conv3x3(32->32)+relu ... | linear(528->444)"."""
        parts = []
        for op in self.features:
            if isinstance(op, ConvOp):
                co, ci, kh, kw = op.weight.shape
                parts.append(f"conv{kh}x{kw}({ci}->{co})" + ("+relu" if op.relu else ""))
            else:
                parts.append(f"pool{op.kernel[0]}x{op.kernel[1]}/{op.stride[0]}")
        head = [f"linear({op.weight.shape[1]}->{op.weight.shape[0]})" + ("+relu" if op.relu else "")
                for op in self.classifier]
        return " ".join(parts) + " | " + " ".join(head)


_RELU_FUNCTIONS = (F.relu, torch.relu, torch.relu_)
_SKIPPED_MODULES = (nn.Identity, nn.Dropout)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_padding(m: nn.Conv2d, where: str) -> tuple[int, int]:
    if m.padding == "valid":
        return (0, 0)
    if m.padding == "same":
        if any(k % 2 == 0 for k in m.kernel_size):
            raise UnfusableModelError(f"{where}: padding='same' with an even kernel pads asymmetrically")
        return (m.kernel_size[0] // 2, m.kernel_size[1] // 2)
    return _pair(m.padding)


def _conv_op(m: nn.Conv2d, shape: tuple[int, int, int], where: str) -> ConvOp:
    if m.stride != (1, 1) or m.dilation != (1, 1) or m.groups != 1 or m.padding_mode != "zeros":
        raise UnfusableModelError(f"{where}: only stride 1, dilation 1, groups 1 and zero padding fuse "
                                  f"(got stride {m.stride}, dilation {m.dilation}, groups {m.groups}, "
                                  f"padding_mode {m.padding_mode!r})")
    c, h, w = shape
    if m.in_channels != c:
        raise UnfusableModelError(f"{where}: expects {m.in_channels} input channels, the previous layer gives {c}")
    (kh, kw), (ph, pw) = m.kernel_size, _conv_padding(m, where)
    out = (m.out_channels, h + 2 * ph - kh + 1, w + 2 * pw - kw + 1)
    weight = m.weight.detach().float().cpu()
    bias = torch.zeros(m.out_channels) if m.bias is None else m.bias.detach().float().cpu()
    return ConvOp(weight, bias, (ph, pw), False, shape, out, where)


def _pool_op(m: nn.MaxPool2d, shape: tuple[int, int, int], where: str) -> PoolOp:
    if _pair(m.padding) != (0, 0) or _pair(m.dilation) != (1, 1) or m.ceil_mode or m.return_indices:
        raise UnfusableModelError(f"{where}: only MaxPool2d without padding, dilation, ceil_mode or indices fuses")
    kernel = _pair(m.kernel_size)
    stride = kernel if m.stride is None else _pair(m.stride)
    c, h, w = shape
    out = (c, (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1)
    return PoolOp(kernel, stride, shape, out, where)


def _linear_op(m: nn.Linear, features: int, where: str) -> LinearOp:
    if m.in_features != features:
        raise UnfusableModelError(f"{where}: expects {m.in_features} features, the previous layer gives {features}")
    bias = torch.zeros(m.out_features) if m.bias is None else m.bias.detach().float().cpu()
    return LinearOp(m.weight.detach().float().cpu(), bias, False, where)


def _graph(network: nn.Module) -> fx.Graph:
    if isinstance(network, fx.GraphModule):
        return network.graph
    try:
        return fx.Tracer().trace(network)
    except Exception as exc:  # fx raises TraceError, TypeError, RuntimeError... for untraceable code
        raise UnfusableModelError(f"torch.fx cannot trace {type(network).__name__}.forward "
                                  f"({type(exc).__name__}: {exc})") from exc


def _kind(node: fx.Node, network: nn.Module) -> tuple[str, nn.Module | None]:
    """What a node does: conv, pool, linear, relu, flatten, skip or unsupported (with its module if any)."""
    if node.op == "call_module":
        m = network.get_submodule(node.target)
        kinds = {nn.Conv2d: "conv", nn.MaxPool2d: "pool", nn.Linear: "linear", nn.ReLU: "relu"}
        if type(m) in kinds:
            return kinds[type(m)], m
        if type(m) is nn.Flatten and m.start_dim == 1 and m.end_dim == -1:
            return "flatten", m
        return ("skip" if type(m) in _SKIPPED_MODULES else "unsupported"), m
    if node.op == "call_function" and node.target in _RELU_FUNCTIONS:
        return "relu", None
    if node.op == "call_function" and node.target is F.max_pool2d and (pool := _functional_pool(node)) is not None:
        return "pool", pool
    if node.op == "call_method" and node.target in ("relu", "relu_"):
        return "relu", None
    flat_args = node.args[1:] + tuple(node.kwargs.values())
    if (node.op, node.target) in (("call_function", torch.flatten), ("call_method", "flatten")) and flat_args == (1,):
        return "flatten", None
    return "unsupported", None


def _functional_pool(node: fx.Node) -> nn.MaxPool2d | None:
    """F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices) as the module it equals,
    when its arguments are constants (None otherwise)."""
    names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
    given = {**dict(zip(names, node.args[1:], strict=False)), **node.kwargs}
    if any(isinstance(v, fx.Node) for v in given.values()):
        return None
    return nn.MaxPool2d(**given)


def _describe(node: fx.Node, module: nn.Module | None) -> str:
    if module is not None and node.op == "call_module":
        return f"layer {node.target!r} ({type(module).__name__})"
    return f"layer {node.name!r} ({getattr(node.target, '__name__', node.target)})"


def _chain(graph: fx.Graph) -> list[fx.Node]:
    """The compute nodes of a graph that is a single chain input -> ... -> output."""
    nodes = [n for n in graph.nodes if n.op not in ("placeholder", "output", "get_attr")]
    inputs = [n for n in graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise UnfusableModelError(f"the network takes {len(inputs)} inputs; the fused kernels take one image batch")
    prev = inputs[0]
    for node in nodes:
        data_args = [a for a in node.all_input_nodes if a.op != "get_attr"]
        if data_args != [prev] or len(prev.users) != 1:
            raise UnfusableModelError(f"layer {node.name!r} is not part of a single chain of layers "
                                      "(branches, residual adds and concatenations do not fuse)")
        prev = node
    return nodes


def extract_program(network: nn.Module, input_shape: tuple[int, int, int]) -> FusedProgram:
    """The fused program of `network` for folded inputs of `input_shape` (f*C, H, W).

    Raises UnfusableModelError naming the first layer the kernels cannot compute exactly.
    """
    shape = tuple(int(s) for s in input_shape)
    features: list[ConvOp | PoolOp] = []
    classifier: list[LinearOp] = []
    flat: int | None = None  # feature count after the flatten, None before it
    for node in _chain(_graph(network)):
        kind, module = _kind(node, network)
        where = _describe(node, module)
        if kind == "skip":
            continue
        if kind == "unsupported":
            raise UnfusableModelError(f"{where} has no fused kernel (supported: Conv2d, ReLU, MaxPool2d, Flatten, "
                                      "Linear, Identity, Dropout)")
        if kind == "relu":
            if classifier:
                classifier[-1] = _with_relu(classifier[-1])
            elif any(isinstance(op, ConvOp) for op in features):
                i = max(i for i, op in enumerate(features) if isinstance(op, ConvOp))
                features[i] = _with_relu(features[i])  # ReLU commutes with max-pool and flatten
            else:
                raise UnfusableModelError(f"{where}: a ReLU on the input, before any conv, does not fuse")
        elif flat is None and kind == "conv":
            features.append(_conv_op(module, shape, where))
            shape = features[-1].out_shape
        elif flat is None and kind == "pool":
            if not features:
                raise UnfusableModelError(f"{where}: the first layer must be a Conv2d, not a max-pool")
            features.append(_pool_op(module, shape, where))
            shape = features[-1].out_shape
        elif flat is None and kind == "flatten":
            flat = shape[0] * shape[1] * shape[2]
        elif flat is not None and kind == "linear":
            classifier.append(_linear_op(module, flat, where))
            flat = module.out_features
        else:
            stage = "after the flatten" if flat is not None else "before the flatten"
            raise UnfusableModelError(f"{where} {stage} does not fuse: the kernels compute convs and max-pools, "
                                      "then one flatten, then Linear layers")
        if min(shape[1:]) < 1:
            raise UnfusableModelError(f"{where}: the feature map is empty for input {tuple(input_shape)}")
    if not features or not isinstance(features[0], ConvOp):
        raise UnfusableModelError("the network must start with a Conv2d")
    if not classifier:
        raise UnfusableModelError("the network must end with a flatten and Linear layers")
    return FusedProgram(tuple(int(s) for s in input_shape), tuple(features),
                        (_hwc_columns(classifier[0], shape), *classifier[1:]))


def _with_relu(op: ConvOp | LinearOp) -> ConvOp | LinearOp:
    return type(op)(**{**op.__dict__, "relu": True})


def _hwc_columns(op: LinearOp, shape: tuple[int, int, int]) -> LinearOp:
    """The first Linear with its columns reordered from (C, H, W) to (H, W, C) flatten order."""
    c, h, w = shape
    weight = op.weight.view(-1, c, h, w).permute(0, 2, 3, 1).reshape(op.weight.shape[0], -1)
    return LinearOp(weight.contiguous(), op.bias, op.relu, op.name)
