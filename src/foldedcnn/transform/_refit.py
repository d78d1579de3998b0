"""Refit a warm start's blocks to the original's outputs by least squares, layer by layer, on calibration images.

The warm start keeps min(n, F // f) of a layer's n channels per image, so each image's block computes a
channel-pruned original, which can be far from it (at f = 4 every hidden layer keeps half its channels, and
a game model's top-1 drops to near chance). Refitting is the classic remedy of channel pruning (He et al.,
"Channel Pruning for Accelerating Very Deep Neural Networks", ICCV 2017): for each conv and Linear layer in
forward order, with the layers before it already refitted, choose the block's weights and bias that best
reproduce the original layer's output at the kept output channels from the kept input channels,

    W = argmin ||X W - Y||^2 + ridge ||W||^2,

X: the folded network's input to the layer in one image's block (conv: every k x k patch, as F.unfold lays
it out, plus a 1 for the bias), Y: the original's output for that image, over every image of the
calibration set. The normal equations are accumulated over images, so memory does not grow with their
number. All f blocks share one fit (they are copies of one pruned original) and only block entries are
written: weights between images' blocks stay zero, so image j's logits still depend on image j alone.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

#: Ridge term, relative to the mean diagonal of X^T X: enough to keep a fit of nearly collinear patches
#: (neighbouring pixels) stable in float64, far too small to bias a well-determined one.
RIDGE = 1e-4
CHUNK = 64  # calibration images per forward pass


@contextmanager
def _evaluating(*nets: nn.Module):
    modes = [n.training for n in nets]
    for n in nets:
        n.eval()
    try:
        yield
    finally:
        for n, mode in zip(nets, modes, strict=True):
            n.train(mode)


def _captured(net: nn.Module, layer: nn.Module, x: torch.Tensor, want_input: bool) -> torch.Tensor:
    """The input (or output) of `layer` when `net` runs on `x`, chunk by chunk."""
    out = []

    def hook(module, inputs, output):
        out.append((inputs[0] if want_input else output).detach())

    handle = layer.register_forward_hook(hook)
    try:
        for i in range(0, x.shape[0], CHUNK):
            net(x[i:i + CHUNK])
    finally:
        handle.remove()
    return torch.cat(out)


def _patches(x: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """Rows of the least-squares problem: (N, in) for Linear; for a conv, (N * L, in * kh * kw) of its patches."""
    if isinstance(layer, nn.Linear):
        return x.flatten(1)
    cols = F.unfold(x, layer.kernel_size, layer.dilation, layer.padding, layer.stride)  # (N, in*kh*kw, L)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _targets(y: torch.Tensor) -> torch.Tensor:
    """(N, out) or (N, out, H, W) -> rows (N * H * W, out) in the order of _patches."""
    return y if y.dim() == 2 else y.flatten(2).transpose(1, 2).reshape(-1, y.shape[1])


def refittable(layer: nn.Module) -> bool:
    """Conv2d (zero padding, one group) and Linear layers; others keep their copied weights."""
    if isinstance(layer, nn.Linear):
        return True
    return isinstance(layer, nn.Conv2d) and layer.groups == 1 and layer.padding_mode == "zeros" \
        and not isinstance(layer.padding, str)


@torch.no_grad()
def refit_block(original: nn.Module, folded_net: nn.Module, name: str, images: torch.Tensor, fold: int,
                rows_src: torch.Tensor, rows_dst: torch.Tensor, cols_src: torch.Tensor, cols_dst: torch.Tensor
                ) -> None:
    """Refit layer `name` of `folded_net` (fold `fold`) in place.

    images: (N, C, H, W) normalised calibration images, N a multiple of `fold`. rows_src (m_out,) / cols_src
    (m_in,): the original's kept output / input features; rows_dst (f, m_out) / cols_dst (f, m_in): their
    slots in each image's block of the folded layer.
    """
    src, dst = original.get_submodule(name), folded_net.get_submodule(name)
    n, c, h, w = images.shape
    with _evaluating(original, folded_net):
        y = _captured(original, src, images, want_input=False)[:, rows_src]  # (N, m_out, ...)
        x = _captured(folded_net, dst, images.reshape(n // fold, fold * c, h, w), want_input=True)
    m_in, bias = cols_src.numel(), dst.bias is not None
    k = m_in * (1 if isinstance(dst, nn.Linear) else dst.kernel_size[0] * dst.kernel_size[1])
    xtx = torch.zeros(k + bias, k + bias, dtype=torch.float64)
    xty = torch.zeros(k + bias, rows_src.numel(), dtype=torch.float64)
    for j in range(fold):
        rows = _patches(x[:, cols_dst[j]], dst).double()  # image j of every group, its kept input features
        if bias:
            rows = torch.cat([rows, rows.new_ones(rows.shape[0], 1)], dim=1)
        xtx += rows.T @ rows
        xty += rows.T @ _targets(y[j::fold]).double()
    ridge = RIDGE * float(xtx.diagonal()[:k].mean()) or RIDGE
    xtx[:k, :k] += ridge * torch.eye(k, dtype=torch.float64)
    fit = torch.linalg.solve(xtx, xty)  # (k + bias, m_out)
    weight = fit[:k].T.to(dst.weight.dtype)
    if isinstance(dst, nn.Conv2d):
        weight = weight.reshape(-1, m_in, *dst.kernel_size)
    for j in range(fold):
        dst.weight[rows_dst[j][:, None], cols_dst[j][None, :]] = weight
        if bias:
            dst.bias[rows_dst[j]] = fit[k].to(dst.bias.dtype)
