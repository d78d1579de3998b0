"""Block-diagonal folding (HFTA's check): a fold that computes exactly f copies of the original.

With width_mult = f every space of n channels gets f*n folded channels. Its *layout* says where
image j's channel c sits: by default block j, i.e. j*n + c (this is the fold convention for the
input and the logits). Each layer's weights are then the original's, copied once per image onto
(layout of its outputs) x (layout of its inputs) and zero elsewhere, so images never mix.

A concat [a | b] folds to [a widened | b widened]: image j's channels of a concat are not one
block, and a grouped conv after it sees, in each folded group, the channels of f (image, group)
pairs that are not in image order. Its output layout is therefore *derived* from its input's: the
f pairs of folded group G take its output slots in order. Layouts are computed from the plan in
execution order; a space whose layout two layers would derive differently raises.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from ..errors import FoldedCNNError
from ..folded import FoldedModel
from ._fold import fold_model
from .plan import FoldPlan, LayerPlan


class _Layouts:
    """Layout of each space of an exact-f plan: a LongTensor (f, n) of folded channel indices."""

    def __init__(self, plan: FoldPlan) -> None:
        self.f = plan.fold
        self.sizes = {s.id: s.channels for s in plan.spaces}
        bad = [s for s in plan.spaces if s.folded != plan.fold * s.channels]
        if bad:
            raise FoldedCNNError(f"block-diagonal weights need every space widened exactly f={plan.fold} times "
                                 f"(width_mult=fold, align=1); space {bad[0].id} has {bad[0].channels} -> "
                                 f"{bad[0].folded} channels")
        self.derived: dict[int, torch.Tensor] = {}
        self.read: set[int] = set()

    def _default(self, sid: int) -> torch.Tensor:
        return image_slots(self.f, self.f * self.sizes[sid], self.sizes[sid])

    def of(self, sids: list[int]) -> torch.Tensor:
        """Layout (f, channels) of a channel axis made of spaces `sids` (concatenated)."""
        parts, offset = [], 0
        for sid in sids:
            self.read.add(sid)
            parts.append(self.derived.get(sid, self._default(sid)) + offset)
            offset += self.f * self.sizes[sid]
        return torch.cat(parts, dim=1)

    def derive(self, sids: list[int], layout: torch.Tensor, where: str) -> None:
        """Set the layout of the axis `sids` to `layout` (f, channels), space by space."""
        col, offset = 0, 0
        for sid in sids:
            n = self.sizes[sid]
            piece = layout[:, col:col + n] - offset
            if not torch.equal(piece.flatten().sort().values, torch.arange(self.f * n)):
                raise FoldedCNNError(f"{where}: its output channels cannot be laid out block-diagonally")
            known = self.derived.get(sid, self._default(sid) if sid in self.read else None)
            if known is not None and not torch.equal(known, piece):
                raise FoldedCNNError(f"{where}: two layers need different channel layouts for one space")
            self.derived[sid] = piece
            col, offset = col + n, offset + self.f * n


def image_slots(f: int, folded: int, k: int) -> torch.Tensor:
    """(f, k): image j's first k slots of a space folded to `folded` channels (block j of folded // f)."""
    return torch.arange(f)[:, None] * (folded // f) + torch.arange(k)


def copy_norm(src: nn.Module, dst: nn.Module, src_idx: torch.Tensor, dst_idx: torch.Tensor) -> None:
    """BatchNorm: dst's entries dst_idx[j] <- src's entries src_idx, for every image j; num_batches_tracked."""
    for name in ("weight", "bias", "running_mean", "running_var"):
        s, d = getattr(src, name), getattr(dst, name)
        if s is not None:
            for j in range(dst_idx.shape[0]):
                d[dst_idx[j]] = s[src_idx]
    if src.num_batches_tracked is not None:
        dst.num_batches_tracked.copy_(src.num_batches_tracked)


def feature_slots(layout: torch.Tensor, inner: int) -> torch.Tensor:
    """Layout of flattened features: channel c's `inner` elements sit at c*inner ... c*inner + inner-1."""
    return (layout[:, :, None] * inner + torch.arange(inner)).flatten(1)


def _pairs(lp: LayerPlan, lin: torch.Tensor,
           lout: torch.Tensor | None) -> Iterator[tuple[int, int, int, torch.Tensor | None, torch.Tensor]]:
    """For each image j and original group g: folded group, output rows and local input columns."""
    f = lin.shape[0]
    ci, co = lp.in_channels // lp.groups, lp.out_channels // lp.groups
    fin, fout = lp.folded_in // lp.folded_groups, lp.folded_out // lp.folded_groups
    for j in range(f):
        for g in range(lp.groups):
            cols = lin[j, g * ci:(g + 1) * ci]
            group = int(cols[0]) // fin
            if not bool((cols // fin == group).all()):
                raise FoldedCNNError(f"layer {lp.name}: an original group is cut across folded groups")
            rows = None if lout is None else lout[j, g * co:(g + 1) * co]
            if rows is not None and not bool((rows // fout == group).all()):
                raise FoldedCNNError(f"layer {lp.name}: output rows fall outside their folded group")
            yield j, g, group, rows, cols - group * fin


def _derive_grouped(lp: LayerPlan, layouts: _Layouts) -> None:
    """Output layout of a grouped/depthwise conv: folded group G's (image, group) pairs fill its slots in order."""
    lin = layouts.of(lp.in_spaces)
    co = lp.out_channels // lp.groups
    per_group = lp.folded_out // lp.folded_groups
    lout = torch.empty(lin.shape[0], lp.out_channels, dtype=torch.long)
    used: dict[int, int] = {}
    pairs = sorted(_pairs(lp, lin, None), key=lambda p: int(lin[p[0], p[1] * (lp.in_channels // lp.groups)]))
    for j, g, group, _, _ in pairs:
        slot = used.get(group, 0)
        used[group] = slot + co
        lout[j, g * co:(g + 1) * co] = torch.arange(co) + group * per_group + slot
    layouts.derive(lp.out_spaces, lout, f"layer {lp.name}")


@torch.no_grad()
def _fill(lp: LayerPlan, src: nn.Module, dst: nn.Module, layouts: _Layouts) -> None:
    lin = feature_slots(layouts.of(lp.in_spaces), lp.inner)
    lout = layouts.of(lp.out_spaces)
    if lp.kind == "batchnorm":
        copy_norm(src, dst, torch.arange(lin.shape[1]), lin)
        return
    if lp.kind not in ("conv", "linear"):
        raise FoldedCNNError(f"layer {lp.name}: a {lp.kind} keeps its groups when folded, so it mixes images; "
                             "it has no block-diagonal equivalent")
    dst.weight.zero_()
    co = lp.out_channels // lp.groups
    for _j, g, _group, rows, local in _pairs(lp, lin, lout):
        dst.weight[rows[:, None], local[None, :]] = src.weight[g * co:(g + 1) * co]
        if dst.bias is not None:
            dst.bias[rows] = src.bias[g * co:(g + 1) * co]


def fill_block_diagonal(folded: FoldedModel, original: nn.Module) -> None:
    """Overwrite `folded`'s widened layers so that folded(fold(x)) == original on each image.

    I.e. folded.forward_folded maps (N, f*C, H, W) -> (N, f*K) as f copies of original,
    (N, C, H, W) -> (N, K), applied to channel blocks [j*C, (j+1)*C) and giving logit blocks j.

    `folded` must come from fold_model(original, f, ..., width_mult=f, align=1). Images are
    never mixed: every weight between channels of different images is zero. Raises
    FoldedCNNError for layers without a block-diagonal equivalent (GroupNorm).
    """
    layouts = _Layouts(folded.plan)
    for lp in folded.plan.layers:
        if lp.kind == "conv" and lp.groups > 1:
            _derive_grouped(lp, layouts)
    for lp in folded.plan.layers:
        _fill(lp, original.get_submodule(lp.name), folded.network.get_submodule(lp.name), layouts)


def block_diagonal_fold(model: nn.Module, fold: int, example_input: torch.Tensor, **kwargs) -> FoldedModel:
    """fold_model(model, fold, example_input, width_mult=fold, align=1) with block-diagonal weights.

    The result maps images (B, C, H, W) -> (B, K) exactly as `model` does (up to float rounding),
    image by image: the strongest check that a fold keeps channels apart. `kwargs` go to fold_model.
    """
    folded = fold_model(model, fold, example_input, width_mult=float(fold), align=1, **kwargs)
    fill_block_diagonal(folded, model)
    return folded
