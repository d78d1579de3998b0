"""Warm start: initialise a folded CNN from the trained original instead of from scratch.

A folded space of F channels gives each of the f images k = min(n, F // f) channels of the
original's n: image j's block is slots j*(F//f) ... j*(F//f) + k - 1, holding the k most
important original channels (importance: norm of the weights writing the channel times norm of
the weights reading it, BatchNorm scale included). Every dense conv, Linear and BatchNorm copies
the original's weights between the kept channels into each image's block; weights between
different images' blocks start at zero, so the warm-started network computes f copies of a
channel-pruned original, one per image, and training then learns to share channels across
images. Folded channels outside every block (F - f*k spares) keep their fresh initialisation
and are read by nothing, so they change no output but still receive gradients.

With width_mult = f every channel is kept and the result equals `fill_block_diagonal`.
Grouped and depthwise convs are not supported (their groups would cut through the blocks).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import FoldedCNNError
from ..folded import FoldedModel
from .fold_model import fold_model
from .plan import FoldPlan, LayerPlan
from .spaces import INPUT, OUTPUT


def plan_of(folded: FoldedModel, original: nn.Module) -> FoldPlan:
    """The fold plan of `folded`: its own (fold_model models) or, for a zoo model, the plan fold_model
    makes for `original` with the zoo network's width_mult and align (checked against its layers)."""
    if folded.plan is not None:
        return folded.plan
    net = folded.network
    example = torch.zeros(1, *folded.input_shape)
    plan = fold_model(original, folded.fold, example, width_mult=getattr(net, "width_mult", None),
                      align=getattr(net, "align", 1)).plan
    for lp in plan.layers:
        if lp.kind in ("conv", "linear"):
            w = net.get_submodule(lp.name).weight
            if (w.shape[0], w.shape[1] * lp.folded_groups) != (lp.folded_out, lp.folded_in):
                raise FoldedCNNError(f"layer {lp.name}: the folded network's weight {tuple(w.shape)} does not "
                                     f"match the fold plan ({lp.folded_out}, {lp.folded_in}); was it widened by hand?")
    return plan


def _channel_scores(plan: FoldPlan, original: nn.Module) -> dict[int, torch.Tensor]:
    """Importance (n,) of each space's channels: (writing-weight norm) * (reading-weight norm)."""
    sizes = {s.id: s.channels for s in plan.spaces}
    write = {sid: torch.zeros(n) for sid, n in sizes.items()}
    read = {sid: torch.zeros(n) for sid, n in sizes.items()}
    scale = {sid: torch.ones(n) for sid, n in sizes.items()}
    for lp in plan.layers:
        m = original.get_submodule(lp.name)
        if lp.kind == "batchnorm" and m.weight is not None and m.running_var is not None:
            gain = (m.weight.detach().abs() / (m.running_var + m.eps).sqrt()).float()
            for sid, part in _split(lp.out_spaces, sizes, gain):
                scale[sid] = scale[sid] * part
        if lp.kind not in ("conv", "linear"):
            continue
        w = m.weight.detach().float()
        rows = w.flatten(1).norm(dim=1)
        cols = w.transpose(0, 1).reshape(w.shape[1] // lp.inner, -1).norm(dim=1)  # per input channel
        for sid, part in _split(lp.out_spaces, sizes, rows):
            write[sid] += part
        if lp.groups == 1:
            for sid, part in _split(lp.in_spaces, sizes, cols):
                read[sid] += part
    return {sid: write[sid] * scale[sid] * read[sid] for sid in sizes}


def _split(sids: list[int], sizes: dict[int, int], values: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """Cut a per-channel vector of a concatenated axis into its spaces' pieces."""
    out, start = [], 0
    for sid in sids:
        out.append((sid, values[start:start + sizes[sid]]))
        start += sizes[sid]
    return out


def select_channels(folded: FoldedModel, original: nn.Module) -> dict[int, torch.Tensor]:
    """Per space id, the original channels (ascending) each image keeps in the warm start.

    Input and logit spaces keep all channels; a hidden space of n channels folded to F keeps the
    min(n, F // f) most important.
    """
    plan = plan_of(folded, original)
    scores = _channel_scores(plan, original)
    keep = {}
    for s in plan.spaces:
        k = s.channels if s.kind in (INPUT, OUTPUT) else min(s.channels, s.folded // plan.fold)
        keep[s.id] = scores[s.id].argsort(descending=True, stable=True)[:k].sort().values
    return keep


def _axis(sids: list[int], plan: FoldPlan, keep: dict[int, torch.Tensor], inner: int
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """For a channel axis made of `sids`: kept original features (m,) and their folded slots (f, m)."""
    spaces = {s.id: s for s in plan.spaces}
    src, dst, src_off, dst_off = [], [], 0, 0
    for sid in sids:
        s, kept = spaces[sid], keep[sid]
        block = s.folded // plan.fold
        src.append(kept + src_off)
        dst.append(torch.arange(plan.fold)[:, None] * block + torch.arange(kept.numel()) + dst_off)
        src_off, dst_off = src_off + s.channels, dst_off + s.folded
    channels, slots = torch.cat(src), torch.cat(dst, dim=1)
    t = torch.arange(inner)
    return (channels[:, None] * inner + t).flatten(), (slots[:, :, None] * inner + t).flatten(1)


@torch.no_grad()
def _copy(lp: LayerPlan, src: nn.Module, dst: nn.Module, plan: FoldPlan, keep: dict[int, torch.Tensor]) -> None:
    rows_src, rows_dst = _axis(lp.out_spaces, plan, keep, 1)
    if lp.kind == "batchnorm":
        for name in ("weight", "bias", "running_mean", "running_var"):
            s, d = getattr(src, name), getattr(dst, name)
            if s is not None:
                for j in range(plan.fold):
                    d[rows_dst[j]] = s[rows_src]
        return
    if lp.kind not in ("conv", "linear"):
        raise FoldedCNNError(f"layer {lp.name}: warm start does not support {lp.kind} layers")
    if lp.groups != 1:
        raise FoldedCNNError(f"layer {lp.name}: warm start needs dense convs, this one has groups={lp.groups}; "
                             "train the folded model from scratch (no --init-from)")
    cols_src, cols_dst = _axis(lp.in_spaces, plan, keep, lp.inner)
    block = src.weight[rows_src][:, cols_src]
    covered = rows_dst.flatten()
    dst.weight[covered] = 0.0
    for j in range(plan.fold):
        dst.weight[rows_dst[j][:, None], cols_dst[j][None, :]] = block
    if dst.bias is not None:
        dst.bias[covered] = 0.0
        for j in range(plan.fold):
            dst.bias[rows_dst[j]] = src.bias[rows_src]


def warm_start(folded: FoldedModel, original: nn.Module) -> None:
    """Overwrite `folded` (fold f) in place with block copies of the trained `original` (fold 1).

    `original` maps (B, C, H, W) -> (B, K) and `folded` (N, f*C, H, W) -> (N, f*K) with the same
    layer names (a zoo model at two folds, or fold_model of the same model). Afterwards image j's
    logits depend on image j alone and equal those of `original` pruned to `select_channels`.
    Raises FoldedCNNError for grouped convs, GroupNorm, or a folded network that does not match.
    """
    plan = plan_of(folded, original)
    keep = select_channels(folded, original)
    for lp in plan.layers:
        try:
            src, dst = original.get_submodule(lp.name), folded.network.get_submodule(lp.name)
        except AttributeError as exc:
            raise FoldedCNNError(f"layer {lp.name} is missing from one of the two networks; warm start needs "
                                 "the same architecture at two folds") from exc
        _copy(lp, src, dst, plan, keep)
