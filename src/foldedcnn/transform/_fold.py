"""fold_model(): analyse -> plan -> apply, and rebuilding a folded model from a checkpoint's plan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import FoldedCNNError
from ..folded import FoldedModel
from ..identity import ModelIdentity
from ..layout import check_fold
from ..models.widths import check_width_args, resolve_align, resolve_min_block
from ._apply import apply_plan
from ._channel_graph import analyse
from ._sources import build_source, load_factory, trusted
from .plan import FoldPlan, make_plan


def _qualname(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def fold_model(
    model: nn.Module,
    fold: int,
    example_input: torch.Tensor,
    *,
    width_mult: float | None = None,
    align: int | None = None,
    classifier: str | None = None,
    leaf_modules: Sequence[type[nn.Module]] = (),
    source: dict[str, Any] | None = None,
    block_of: int = 1,
    min_block: int | None = None,
) -> FoldedModel:
    """Fold any CNN: `model` maps (B, C, H, W) -> (B, K); the result's network maps (N, f*C, H, W) -> (N, f*K).

    `example_input` is an unfolded batch (B, C, H, W) used to trace shapes. Hidden widths become
    floor(w * width_mult) (sqrt(fold) by default), at least min(w, min_block) per image (by default 8; 0, none, with
    the paper's widths), rounded up to a multiple of `align` (by default 8 for fold > 1, tensor cores; 1
    gives the paper's exact widths; fold 1 keeps the original); see models.widths. The input
    takes f*C channels and the classifier emits f*K logits, block j for image j. `classifier`
    names the logits layer when it is not the one producing the model's output.
    `leaf_modules`: module classes torch.fx must not trace into (give each a rule with
    `register_rule`). `source` says how to rebuild the original model for checkpoints:
    {"factory": "pkg.module:function", "kwargs": {...}} or {"zoo": name}. `block_of` b > 1 (at fold 1)
    gives one image's block of the model folded b times with this width_mult and align: every hidden
    width // b (transform.narrow_model's narrow network).
    The model is not modified; the folded network is a deep copy with wider layers and fresh
    weights, of the same class (or a torch.fx.GraphModule when split sizes had to be edited).
    Raises UnsupportedOpError, ShapeError or FoldError with the node and the fix.
    """
    fold = check_fold(fold)
    align = resolve_align(align, fold)
    min_block = resolve_min_block(min_block, align)
    check_width_args(width_mult, align, block_of, fold)
    a = analyse(model, example_input, classifier=classifier, leaf_modules=leaf_modules)
    plan = make_plan(a, fold, width_mult, align, classifier, [_qualname(c) for c in leaf_modules], block_of,
                     min_block)
    network = apply_plan(model, plan, leaf_modules)
    identity = ModelIdentity(fold, tuple(plan.input_shape), plan.num_classes, plan=plan, source=source,
                             width_mult=width_mult, align=align, block_of=block_of, min_block=min_block)
    folded = FoldedModel(network, identity)
    folded.training = network.training
    return folded


def rebuild_from_architecture(architecture: dict[str, Any], *, trust_code: bool = False) -> FoldedModel:
    """An untrained FoldedModel from a checkpoint's {"kind": "plan", "plan": ..., "source": ...}.

    Re-folds the source model with the stored fold, width_mult, align, block_of, min_block (0, none, in plans
    stored before it existed) and classifier and checks
    that every layer gets the stored width. A `factory` source or leaf modules are imported only
    with `trust_code=True` (see build_source); a zoo source imports nothing.
    """
    try:
        plan = FoldPlan.from_dict(architecture["plan"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FoldedCNNError(f"the stored fold plan is damaged ({type(exc).__name__}: {exc})") from None
    model = build_source(architecture.get("source"), trust_code=trust_code)
    leaves = [load_factory(trusted(name, trust_code, "use the module class")) for name in plan.leaf_modules]
    example = torch.zeros(1, *plan.input_shape)
    folded = fold_model(model, plan.fold, example, width_mult=plan.width_mult, align=plan.align,
                        classifier=plan.classifier, leaf_modules=leaves, source=architecture.get("source"),
                        block_of=plan.block_of, min_block=plan.min_block)
    if folded.plan.layers != plan.layers:
        raise FoldedCNNError("the recorded source no longer folds to the stored plan (its architecture changed)")
    return folded
