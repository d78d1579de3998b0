"""Who a folded network is: one typed description that travels with the model.

A zoo network (`create_model`) and every `FoldedModel` carry a `ModelIdentity`: what it was built
from (a zoo name, or for `fold_model` the fold plan and the source of its original), its fold and
width rule, what it reads ((C, H, W) per image) and emits (K classes), and — once trained — the
normalisation and class names its weights expect. Checkpoints are written from it and rebuild it;
the Engine takes its normalisation from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from torch import nn

from .errors import FoldedCNNError

if TYPE_CHECKING:
    from .transform.plan import FoldPlan

Normalization = Mapping[str, Sequence[float]]  # {"mean": [...], "std": [...]}, one value per channel
DEFAULT_MEAN, DEFAULT_STD = 0.5, 0.25  # per channel, for a model not trained yet (images in [0, 1] to about [-2, 2])


@dataclass(frozen=True)
class ModelIdentity:
    """What a folded network (N, f*C, H, W) -> (N, f*K) is.

    `zoo`: the zoo name of a network built by `create_model`. `plan` (a FoldPlan) and `source` (how to
    build the unfolded original: {"zoo": name} or {"factory": "pkg.module:function", "kwargs": {...}})
    describe a `fold_model` network. `width_mult` / `align` / `block_of` / `min_block` are the width rule it was
    built with (models.widths.scaled_width; block_of > 1: a narrow network, one image's block of a folded model;
    min_block 0, no minimum per image: the paper's widths, and networks built before the minimum existed).
    `normalization` maps images in [0, 1] to the network's input, (x - mean) / std per channel, and
    `class_names` name the K classes; both are None until training (or a checkpoint) sets them.
    """

    fold: int
    input_shape: tuple[int, int, int]
    num_classes: int
    zoo: str | None = None
    plan: FoldPlan | None = None
    source: Mapping[str, Any] | None = None
    width_mult: float | None = None
    align: int = 1
    block_of: int = 1
    min_block: int = 0
    normalization: Normalization | None = None
    class_names: tuple[str, ...] | None = None

    def trained(self, normalization: Normalization, class_names: Sequence[str] | None = None) -> ModelIdentity:
        """This identity with the normalisation (and class names) its trained weights expect."""
        norm = {"mean": [float(v) for v in normalization["mean"]], "std": [float(v) for v in normalization["std"]]}
        names = tuple(str(c) for c in class_names) if class_names is not None else self.class_names
        return replace(self, normalization=norm, class_names=names)

    @property
    def resolved_normalization(self) -> dict[str, list[float]]:
        """The normalisation to feed this model: its own, or DEFAULT_MEAN / DEFAULT_STD on each of its input channels
        for an untrained one."""
        if self.normalization is None:
            channels = self.input_shape[0]
            return {"mean": [DEFAULT_MEAN] * channels, "std": [DEFAULT_STD] * channels}
        return {"mean": list(self.normalization["mean"]), "std": list(self.normalization["std"])}

    @property
    def resolved_class_names(self) -> list[str]:
        """Its class names, or "0".."K-1" when none were given."""
        return list(self.class_names) if self.class_names else [str(i) for i in range(self.num_classes)]


def identity_of(network: nn.Module) -> ModelIdentity:
    """The identity a network carries (zoo networks and FoldedModels do); raises naming the fix otherwise."""
    identity = network.__dict__.get("identity")
    if not isinstance(identity, ModelIdentity):
        raise FoldedCNNError(
            f"{type(network).__name__} carries no ModelIdentity: build it with foldedcnn.create_model or "
            "foldedcnn.fold_model, or wrap it as FoldedModel(network, ModelIdentity(fold, (C, H, W), num_classes))")
    return identity


class IdentifiedNetwork:
    """Mixin of the zoo's network classes: `fold`, `num_classes` and `input_shape` read `self.identity`."""

    identity: ModelIdentity

    @property
    def fold(self) -> int:
        return self.identity.fold

    @property
    def num_classes(self) -> int:
        return self.identity.num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.identity.input_shape
