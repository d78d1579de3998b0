"""The narrow network: one image's block of a folded network, as a model of its own at fold 1.

A folded space of F channels gives each of the f images a block of F // f channels, and a warm start fills
every block with the same pruned original (transform.warm_start). Trained inside the folded network, the
blocks are f separate sets of weights, each seeing only the images at its position: a quarter of the data
at f = 4, while the zero weights between blocks, moved by Adam at the rate of the others, mix the images
(on the CPU game tasks a warm-started f = 4 model loses 10-20 points in its first epoch). The narrow
network is that block trained alone: the original with every hidden space of F folded channels cut to
F // f (block_of = f in the width rule, models.widths), one set of weights that sees every image, at about 1/f
of the original's hidden-layer FLOPs. With the paper's widths (align 1) that is floor(n * width_mult / f); the
tensor-core default (align 8) rounds F up and the block takes those channels too, so the narrow network is
wider at no cost to the folded one (game f = 2: 24 and 8 channels instead of 22 and 5). `fill_blocks` then
copies it into every image's block, so the folded network starts out computing it exactly on every image.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import FoldedCNNError
from ..folded import FoldedModel
from ..models.widths import default_width_mult
from ._sources import build_source, load_factory, trusted
from ._warm_start import check_layers, copy_layer, copy_shared, plan_of


def narrow_widths(folded: FoldedModel) -> tuple[float, int, int, int]:
    """The width rule (width_mult, align, block_of, min_block) at fold 1 of `folded`'s narrow network: the folded
    model's width_mult (sqrt(f) made explicit), align and min_block, block_of f: every hidden width is the
    folded one // f."""
    ident = folded.identity
    mult = default_width_mult(folded.fold) if ident.width_mult is None else float(ident.width_mult)
    return mult, ident.align, folded.fold, ident.min_block


def narrow_model(folded: FoldedModel, trust_code: bool = False) -> FoldedModel:
    """The narrow network of `folded` (fold f > 1), freshly initialised: (B, C, H, W) -> (B, K), every hidden
    space of F folded channels at F // f (narrow_widths). A zoo model is built by the zoo; a fold_model
    model is rebuilt from its recorded source (code it names is imported only with `trust_code`)."""
    if folded.fold < 2:
        raise FoldedCNNError("a narrow network is one image's block of a folded model; this one has fold 1")
    mult, align, block_of, min_block = narrow_widths(folded)
    if folded.identity.zoo is not None:
        return FoldedModel.from_zoo(folded.identity.zoo, 1, mult, align, folded.num_classes, block_of=block_of,
                                    min_block=min_block)
    plan, source = folded.plan, folded.identity.source
    if plan is None or source is None:
        raise FoldedCNNError("this folded model records no source to rebuild its original from, so it has no "
                             "narrow network; fold it with fold_model(..., source=...) or train without the "
                             "narrow stage (narrow_epochs=0)")
    from ._fold import fold_model

    leaves = [load_factory(trusted(name, trust_code, "use the module class")) for name in plan.leaf_modules]
    return fold_model(build_source(source, trust_code=trust_code), 1, torch.zeros(1, *folded.input_shape),
                      width_mult=mult, align=align, classifier=plan.classifier, leaf_modules=leaves, source=source,
                      block_of=block_of, min_block=min_block)


@torch.no_grad()
def fill_blocks(folded: FoldedModel, narrow: FoldedModel, original: nn.Module) -> None:
    """Overwrite `folded` (fold f) in place with `narrow` (its narrow network, fold 1) in every image's block.

    `original` is the unfolded network of the same architecture (only its layer shapes are read). Image j's
    block of each hidden space is slots j*(F//f) ... j*(F//f) + k - 1, k the narrow width; weights between
    blocks become zero, so `folded` maps (N, f*C, H, W) -> (N, f*K) with image j's logits equal to
    narrow(image j). Spare slots (F//f - k per block, F mod f at the end) keep their initialisation and are
    read by nothing. Raises FoldedCNNError, leaving `folded` untouched, when the networks do not match.
    """
    plan, nplan = plan_of(folded, original), plan_of(narrow, original)
    check_layers(plan, original, folded)
    check_layers(nplan, original, narrow)
    wide = {s.id: s for s in plan.spaces}
    for s in nplan.spaces:
        mine = wide.get(s.id)
        if mine is None or mine.channels != s.channels or s.folded > mine.folded // plan.fold:
            room = "no such space" if mine is None else f"{mine.folded // plan.fold} channels per image"
            raise FoldedCNNError(f"the narrow network's space {s.id} has {s.folded} channels; the folded model has "
                                 f"{room}; build the narrow network with narrow_model(folded)")
    keep = {s.id: torch.arange(s.folded) for s in nplan.spaces}
    sizes = {s.id: s.folded for s in nplan.spaces}
    for lp in plan.layers:
        copy_layer(lp, narrow.network.get_submodule(lp.name), folded.network.get_submodule(lp.name), plan, keep, sizes)
    copy_shared(plan, narrow.network, folded.network)
