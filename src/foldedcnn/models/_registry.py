"""Model zoo registry in the style of timm: register_model, create_model, list_models."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import FoldedCNNError, UnknownModelError, check_int
from ..identity import ModelIdentity
from ..layout import check_fold
from .widths import resolve_align, resolve_min_block

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about a model: its input (C, H, W), classes and how to build it.

    `build(fold=, width_mult=, align=, num_classes=K, block_of=, min_block=)` returns a network (N, f*C, H, W)
    -> (N, f*K) (align and min_block resolved: widths.resolve_align, widths.resolve_min_block).
    `check_fold(fold)` raises when a family cannot use a fold.
    """

    name: str
    family: str
    input_shape: tuple[int, int, int]
    num_classes: int
    build: Builder
    description: str = ""
    check_fold: Callable[[int], None] | None = None


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model to the zoo; a name can be registered once."""
    if spec.name in _REGISTRY:
        raise FoldedCNNError(f"a model named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(filter: str = "", family: str | None = None) -> list[str]:
    """Sorted zoo names matching the glob `filter` as timm's does (e.g. "noscope*", "*cifar*"; "" for all),
    optionally of one family ('noscope', 'game', 'resnet')."""
    return sorted(n for n, s in _REGISTRY.items()
                  if (not filter or fnmatch.fnmatchcase(n, filter)) and (family is None or s.family == family))


def get_spec(name: str) -> ModelSpec:
    """The ModelSpec of `name`; an unknown name raises an error listing the closest names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint} (`foldedcnn models` lists all {len(_REGISTRY)})"
        ) from None


def create_model(name: str, fold: int = 1, width_mult: float | None = None, align: int | None = None,
                 num_classes: int | None = None, block_of: int = 1, min_block: int | None = None) -> nn.Module:
    """Build zoo model `name` folded by `fold`: a network (N, f*C, H, W) -> (N, f*K).

    Hidden widths are floor(w * width_mult) (width_mult = sqrt(fold) by default), rounded up
    to a multiple of `align`: by default 8 for fold > 1 (tensor cores), the original widths at
    fold 1; align=PAPER_WIDTHS (1) gives the paper's exact widths. Every image keeps at least
    min(w, min_block) channels of a hidden layer: by default MIN_BLOCK (8), none (0) with the paper's widths.
    `num_classes` K replaces the family's number of classes (the architecture is the family's, with a K-way
    classifier). `block_of` b > 1 (at fold 1)
    builds one image's block of the model folded b times with this width_mult and align: every hidden width // b
    (transform.narrow_model's narrow network). The module carries `.identity` (a ModelIdentity naming it, with
    the align and min_block resolved); the zoo's network classes also read `.fold`, `.num_classes` and
    `.input_shape` (per image, (C, H, W)) from it.
    """
    spec = get_spec(name)
    fold = check_fold(fold)
    align = resolve_align(align, fold)
    min_block = resolve_min_block(min_block, align)
    if spec.check_fold is not None:
        spec.check_fold(fold)
    k = spec.num_classes if num_classes is None else num_classes
    check_int("num_classes", k, 1)
    model = spec.build(fold=fold, width_mult=width_mult, align=align, num_classes=k, block_of=block_of,
                       min_block=min_block)
    model.identity = ModelIdentity(fold, spec.input_shape, k, zoo=name, width_mult=width_mult, align=align,
                                   block_of=block_of, min_block=min_block)
    return model
