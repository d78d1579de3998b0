"""Warm start: initialise a folded CNN from the trained original instead of from scratch.

A folded space of F channels gives each of the f images k = min(n, F // f) channels of the
original's n: image j's block is slots j*(F//f) ... j*(F//f) + k - 1, holding the k most
important original channels (importance: norm of the weights writing the channel times norm of
the weights reading it, BatchNorm scale included). Every dense conv, Linear and BatchNorm copies
the original's weights between the kept channels into each image's block; weights between
different images' blocks start at zero, so the warm-started network computes f copies of a
channel-pruned original, one per image, and training then learns to share channels across
images. Folded channels outside every block (F - f*k spares) keep their fresh initialisation;
nothing reads them at first (the weights reading them start at zero), so they change no output
until training makes those weights non-zero.

With width_mult = f every channel is kept and the result equals `fill_block_diagonal`. A depthwise
conv (one filter per channel) copies each kept channel's filter into that channel's slot of every block.
Grouped convs, depthwise ones with a channel multiplier and GroupNorm are refused (their groups would cut
through the blocks), before any weight is written.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import FoldedCNNError
from ..folded import FoldedModel
from ._channel_graph import analyse
from ._refit import refit_block, refittable
from .block_diagonal import copy_norm, feature_slots, image_slots
from .plan import FoldPlan, LayerPlan, make_plan


def plan_of(folded: FoldedModel, original: nn.Module) -> FoldPlan:
    """The fold plan of `folded`: its own (fold_model models) or, for a zoo model, the plan of `original`
    at `folded`'s fold with the zoo network's width rule (width_mult, align, block_of, min_block)."""
    if folded.plan is not None:
        return folded.plan
    a = analyse(original, torch.zeros(1, *folded.input_shape))
    ident = folded.identity
    return make_plan(a, folded.fold, ident.width_mult, ident.align, block_of=ident.block_of,
                     min_block=ident.min_block)


def _depthwise(lp: LayerPlan) -> bool:
    """A conv with one filter per channel, before and after folding (its channels are one space): each channel's
    filter goes to that channel's slot in every image's block."""
    return lp.kind == "conv" and lp.groups == lp.in_channels == lp.out_channels and \
        lp.folded_groups == lp.folded_in == lp.folded_out


def _shape(m: nn.Module) -> tuple[int, int, int]:
    """(inputs, outputs, groups) of a conv, Linear or norm layer as a LayerPlan counts them."""
    if isinstance(m, nn.Conv2d):
        return m.in_channels, m.out_channels, m.groups
    if isinstance(m, nn.Linear):
        return m.in_features, m.out_features, 1
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return m.num_features, m.num_features, 1
    return -1, -1, -1


def check_layers(plan: FoldPlan, original: nn.Module, folded: FoldedModel) -> None:
    """Raise FoldedCNNError unless every planned layer exists in both networks with the planned shapes,
    is one warm start can copy, and every hidden space keeps at least one channel per image."""
    for lp in plan.layers:
        if lp.kind not in ("conv", "linear", "batchnorm") or lp.groups != 1 and not _depthwise(lp):
            what = f"groups={lp.groups}" if lp.kind == "conv" else f"a {lp.kind}"
            raise FoldedCNNError(f"layer {lp.name}: warm start needs dense or depthwise (one filter per channel) "
                                 f"convs, Linear and BatchNorm, this one has {what}; train the folded model from "
                                 "scratch (no --init-from)")
        for net, want, which in ((original, (lp.in_channels, lp.out_channels, lp.groups), "original"),
                                 (folded.network, (lp.folded_in, lp.folded_out, lp.folded_groups), "folded")):
            try:
                got = _shape(net.get_submodule(lp.name))
            except AttributeError:
                got = None
            if got != want:
                raise FoldedCNNError(f"layer {lp.name}: the {which} network has {got or 'no such layer'}, the fold "
                                     f"plan says (in, out, groups) = {want}; warm start needs the same "
                                     "architecture at fold 1 and at fold f")
    for s in plan.spaces:
        if s.folded < plan.fold:
            raise FoldedCNNError(f"a hidden space of {s.channels} channels folds to {s.folded} < f={plan.fold}, so "
                                 "some image would keep no channel; raise --width-mult or --align")


def _channel_scores(plan: FoldPlan, original: nn.Module) -> dict[int, torch.Tensor]:
    """Importance (n,) of each space's channels: (writing-weight norm) * (mean BatchNorm gain) * (reading-weight
    norm); a space shared by several layers (residual adds) sums their norms and averages their gains."""
    sizes = {s.id: s.channels for s in plan.spaces}
    write = {sid: torch.zeros(n) for sid, n in sizes.items()}
    read = {sid: torch.zeros(n) for sid, n in sizes.items()}
    gains: dict[int, list[torch.Tensor]] = {sid: [] for sid in sizes}
    for lp in plan.layers:
        m = original.get_submodule(lp.name)
        if lp.kind == "batchnorm":
            if m.weight is not None and m.running_var is not None:
                gain = (m.weight.detach().abs() / (m.running_var + m.eps).sqrt()).float()
                for sid, part in _split(lp.out_spaces, sizes, gain.view(-1, lp.inner).mean(dim=1)):
                    gains[sid].append(part)
            continue
        w = m.weight.detach().float()
        rows = w.flatten(1).norm(dim=1)
        # per input channel; a depthwise filter reads the channel it writes
        cols = rows if _depthwise(lp) else w.transpose(0, 1).reshape(w.shape[1] // lp.inner, -1).norm(dim=1)
        for sid, part in _split(lp.out_spaces, sizes, rows):
            write[sid] += part
        for sid, part in _split(lp.in_spaces, sizes, cols):
            read[sid] += part
    scale = {sid: torch.stack(g).mean(dim=0) if g else torch.ones(sizes[sid]) for sid, g in gains.items()}
    return {sid: write[sid] * scale[sid] * read[sid] for sid in sizes}


def _split(sids: list[int], sizes: dict[int, int], values: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """Cut a per-channel vector of a concatenated axis into its spaces' pieces."""
    return list(zip(sids, values.split([sizes[s] for s in sids]), strict=True))


def select_channels(folded: FoldedModel, original: nn.Module) -> dict[int, torch.Tensor]:
    """Per space id, the original channels (ascending) each image keeps in the warm start.

    Input and logit spaces keep all channels; a hidden space of n channels folded to F keeps the
    min(n, F // f) most important.
    """
    return _select(plan_of(folded, original), original, folded)


def _select(plan: FoldPlan, original: nn.Module, folded: FoldedModel) -> dict[int, torch.Tensor]:
    check_layers(plan, original, folded)
    scores = _channel_scores(plan, original)
    keep = {}
    for s in plan.spaces:
        k = min(s.channels, s.folded // plan.fold)
        keep[s.id] = scores[s.id].argsort(descending=True, stable=True)[:k].sort().values
    return keep


def _axis(sids: list[int], plan: FoldPlan, keep: dict[int, torch.Tensor], inner: int,
          src_sizes: dict[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For a channel axis made of `sids`: kept source features (m,) and their folded slots (f, m). The source
    is the original (its spaces have `channels` channels) or, with `src_sizes`, a network of those widths."""
    spaces = {s.id: s for s in plan.spaces}
    src, dst, src_off, dst_off = [], [], 0, 0
    for sid in sids:
        s, kept = spaces[sid], keep[sid]
        src.append(kept + src_off)
        dst.append(image_slots(plan.fold, s.folded, kept.numel()) + dst_off)
        src_off, dst_off = src_off + (s.channels if src_sizes is None else src_sizes[sid]), dst_off + s.folded
    return feature_slots(torch.cat(src)[None], inner)[0], feature_slots(torch.cat(dst, dim=1), inner)


@torch.no_grad()
def copy_layer(lp: LayerPlan, src: nn.Module, dst: nn.Module, plan: FoldPlan, keep: dict[int, torch.Tensor],
               src_sizes: dict[int, int] | None = None) -> None:
    """Layer `lp`: `src`'s weights between the kept channels into every image's block of `dst`, zero between
    blocks (`src_sizes`: see _axis)."""
    if lp.kind == "batchnorm":
        copy_norm(src, dst, *_axis(lp.out_spaces, plan, keep, lp.inner, src_sizes))
        return
    rows_src, rows_dst = _axis(lp.out_spaces, plan, keep, 1, src_sizes)
    if _depthwise(lp):
        for j in range(plan.fold):
            dst.weight[rows_dst[j]] = src.weight[rows_src]
            if dst.bias is not None:
                dst.bias[rows_dst[j]] = src.bias[rows_src]
        return
    cols_src, cols_dst = _axis(lp.in_spaces, plan, keep, lp.inner, src_sizes)
    block = src.weight[rows_src][:, cols_src]
    dst.weight[rows_dst.flatten()] = 0.0  # clears the weights between images' blocks
    for j in range(plan.fold):
        dst.weight[rows_dst[j][:, None], cols_dst[j][None, :]] = block
    if dst.bias is not None:
        for j in range(plan.fold):
            dst.bias[rows_dst[j]] = src.bias[rows_src]


def warm_start(folded: FoldedModel, original: nn.Module, calibration: torch.Tensor | None = None) -> None:
    """Overwrite `folded` (fold f) in place with block copies of the trained `original` (fold 1).

    `original` maps (B, C, H, W) -> (B, K) and `folded` (N, f*C, H, W) -> (N, f*K) with the same
    layer names (a zoo model at two folds, or fold_model of the same model). Afterwards image j's
    logits depend on image j alone and equal those of `original` pruned to `select_channels`; with
    `calibration` (normalised images (N, C, H, W), N >= f), each conv and Linear block is then refitted
    by least squares to the original's outputs on them, layer by layer (transform._refit), which brings
    the pruned blocks' logits back towards the original's (unless every channel was kept: then the copy
    is exact already).
    Raises FoldedCNNError, leaving `folded` untouched, for grouped convs, GroupNorm, networks that do not
    match the fold plan, or a space too narrow to give every image a channel.
    """
    plan = plan_of(folded, original)
    keep = _select(plan, original, folded)  # checks every layer before anything is written
    for lp in plan.layers:
        copy_layer(lp, original.get_submodule(lp.name), folded.network.get_submodule(lp.name), plan, keep)
    copy_shared(plan, original, folded.network)
    if calibration is not None:
        _refit(plan, keep, folded, original, calibration)


@torch.no_grad()
def copy_shared(plan: FoldPlan, source: nn.Module, network: nn.Module) -> None:
    """Copy `source`'s parameters and buffers outside the plan's widened layers into `network` wherever the name
    and shape match: what folding leaves as it is, such as a PReLU's one slope shared by every channel."""
    widened = {lp.name for lp in plan.layers}
    targets = {**dict(network.named_parameters()), **dict(network.named_buffers())}
    for name, value in [*source.named_parameters(), *source.named_buffers()]:
        target = targets.get(name)
        if name.rpartition(".")[0] not in widened and target is not None and target.shape == value.shape:
            target.copy_(value)


def refit_warm_start(folded: FoldedModel, original: nn.Module, calibration: torch.Tensor) -> None:
    """The refit step of warm_start(folded, original, calibration) on a `folded` that warm_start(folded, original)
    has already filled (e.g. to evaluate the plain copy first): the same blocks, refitted in place."""
    plan = plan_of(folded, original)
    _refit(plan, _select(plan, original, folded), folded, original, calibration)


def _refit(plan: FoldPlan, keep: dict[int, torch.Tensor], folded: FoldedModel, original: nn.Module,
           calibration: torch.Tensor) -> None:
    if all(keep[s.id].numel() == s.channels for s in plan.spaces):
        return  # every channel kept (f = 1, or width f x n): the copy is exact, nothing to refit
    images = calibration[: calibration.shape[0] // plan.fold * plan.fold].float()
    if images.shape[0] == 0:
        raise FoldedCNNError(f"warm start: {calibration.shape[0]} calibration images, fewer than f={plan.fold}")
    for lp in plan.layers:
        if lp.kind in ("conv", "linear") and refittable(folded.network.get_submodule(lp.name)):
            rows_src, rows_dst = _axis(lp.out_spaces, plan, keep, 1)
            cols_src, cols_dst = _axis(lp.in_spaces, plan, keep, lp.inner)
            refit_block(original, folded.network, lp.name, images, plan.fold, rows_src, rows_dst, cols_src, cols_dst)
