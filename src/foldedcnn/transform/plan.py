"""Plan: the folded width of every channel space and layer, as plain data (JSON round trip).

Widths follow DESIGN.md: a hidden space of w channels becomes floor(w * width_mult) (sqrt(f) by
default), rounded up to a multiple of `align` and of any group count it must divide; the input
space becomes f*C, the logits f*K, a depthwise multiplier's output m times its input. Dense
convs keep groups=1, depthwise convs get groups = folded input channels, grouped convs keep
their group count.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import FoldError, UnsupportedOpError
from ..models.widths import folded_width
from ..tables import format_table
from ._channel_state import Analysis, LayerRecord
from ._spaces import DERIVED, INPUT, OUTPUT, SCALED


@dataclass
class SpacePlan:
    """A channel space: `channels` in the original model, `folded` in the folded one."""

    id: int
    kind: str  # "scaled" | "input" | "output" | "derived"
    channels: int
    folded: int


@dataclass
class LayerPlan:
    """One widened layer. in/out are channels (features for Linear), groups are num_groups for GroupNorm.

    `in_spaces`/`out_spaces` list the spaces of its input/output channel axes in channel order
    (several after a concat); `inner` is the elements per input channel (H*W for a Linear after a
    flatten, else 1).
    """

    name: str
    kind: str  # "conv" | "linear" | "batchnorm" | "groupnorm"
    role: str  # "stem" | "classifier" | "hidden" | "grouped" | "depthwise" | "norm"
    in_channels: int
    out_channels: int
    groups: int
    folded_in: int
    folded_out: int
    folded_groups: int
    in_spaces: list[int]
    out_spaces: list[int]
    inner: int = 1


PER_IMAGE = "per_image"  # EditPlan.location of a log_softmax over the logits, done per image of `new` classes


@dataclass
class EditPlan:
    """A graph edit: the literal at `location` of node `node` changes from `old` to `new`; or, with location
    PER_IMAGE, the op `old` over the folded logits becomes layout.log_softmax_per_image over `new` classes."""

    node: str
    location: str
    old: Any
    new: Any

    def describe(self) -> str:
        """One line saying what the edit does."""
        if self.location == PER_IMAGE:
            return f"node {self.node}: {self.old} per image, over each image's {self.new} logits"
        return f"node {self.node} {self.location}: {self.old} -> {self.new}"


@dataclass
class FoldPlan:
    """How a model folds: parameters, spaces, layers (execution order) and graph edits."""

    fold: int
    width_mult: float | None
    align: int
    classifier: str | None
    input_shape: list[int]
    num_classes: int
    leaf_modules: list[str] = field(default_factory=list)
    spaces: list[SpacePlan] = field(default_factory=list)
    layers: list[LayerPlan] = field(default_factory=list)
    edits: list[EditPlan] = field(default_factory=list)
    block_of: int = 1  # > 1: a narrow network, one image's block of the plan folded block_of times
    min_block: int = 0  # channels per image a hidden space keeps at least (models.widths); 0 (none) in older plans

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; `FoldPlan.from_dict` inverts it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FoldPlan:
        d = dict(d)
        d["spaces"] = [SpacePlan(**s) for s in d.get("spaces", [])]
        d["layers"] = [LayerPlan(**x) for x in d.get("layers", [])]
        d["edits"] = [EditPlan(**e) for e in d.get("edits", [])]
        return cls(**d)

    def layer(self, name: str) -> LayerPlan:
        return next(lp for lp in self.layers if lp.name == name)

    def table(self) -> str:
        """The plan as a text table, one row per layer, then the graph edits."""
        c, h, w = self.input_shape
        mult = "sqrt(f)" if self.width_mult is None else f"{self.width_mult:g}"
        block = (f"  block_of={self.block_of}" if self.block_of > 1 else "") + (
            f"  min_block={self.min_block}" if self.min_block else "")
        head = (f"fold={self.fold}  width_mult={mult}  align={self.align}{block}  input {c}x{h}x{w} "
                f"(folded {self.fold * c})  classes {self.num_classes} (folded {self.fold * self.num_classes})")
        rows = [{"layer": lp.name, "kind": lp.kind, "role": lp.role, "in": lp.in_channels, "out": lp.out_channels,
                 "groups": lp.groups, "folded_in": lp.folded_in, "folded_out": lp.folded_out,
                 "folded_groups": lp.folded_groups} for lp in self.layers]
        lines = [head, format_table(rows)]
        lines += [f"graph edit: {e.describe()}" for e in self.edits]
        return "\n".join(lines)


def _split_sizes(total: int, size: int) -> list[int]:
    """Piece sizes of torch.split(x, size) on `total` channels."""
    return [size] * (total // size) + ([total % size] if total % size else [])


def _chunk_sizes(total: int, chunks: int) -> list[int]:
    """Piece sizes of torch.chunk(x, chunks) on `total` channels."""
    return _split_sizes(total, -(-total // chunks))


class _Widths:
    """Folded width of every unrefined space of an analysis."""

    def __init__(self, a: Analysis, fold: int, width_mult: float | None, align: int, block_of: int,
                 min_block: int) -> None:
        self.sp, self.fold, self.width_mult, self.align, self.block_of = a.spaces, fold, width_mult, align, block_of
        self.min_block = min_block
        self.multiple: dict[int, int] = {}
        for i in range(len(self.sp.size)):
            self._push(self.sp.find(i), 1)
        self.memo: dict[int, int] = {}

    def _push(self, r: int, m: int) -> None:
        m = math.lcm(m, self.sp.multiple.get(r, 1))
        if r in self.sp.pieces:
            for p in self.sp.pieces[r]:
                self._push(self.sp.find(p), m)
        else:
            self.multiple[r] = math.lcm(self.multiple.get(r, 1), m)

    def leaf(self, r: int) -> int:
        if r not in self.memo:
            kind, size, m = self.sp.kind[r], self.sp.size[r], self.multiple.get(r, 1)
            if kind in (INPUT, OUTPUT):
                w = self.fold * size
            elif kind == DERIVED:
                source, mult = self.sp.derived[r]
                w = mult * self.of(self.sp.resolve(source))
            else:
                w = folded_width(size, self.fold, self.width_mult, self.align, self.min_block, self.block_of)
                step = math.lcm(self.align, m)
                w = -(-w // step) * step // self.block_of
            if kind != SCALED and w % m:
                raise FoldError(f"a {kind} channel space of {w} folded channels must be divisible by {m} (groups)")
            self.memo[r] = w
        return self.memo[r]

    def of(self, leaves: list[int]) -> int:
        return sum(self.leaf(r) for r in leaves)


def _layer_plan(a: Analysis, rec: LayerRecord, widths: _Widths, ids: dict[int, int]) -> LayerPlan:
    sp, m = a.spaces, rec.module
    ins, outs = sp.resolve(rec.in_desc), sp.resolve(rec.out_desc)
    for r in ins + outs:
        ids.setdefault(r, len(ids))
    fin, fout = widths.of(ins) * rec.in_desc.inner, widths.of(outs) * rec.out_desc.inner
    if rec.kind == "conv":
        cin, cout, groups = m.in_channels, m.out_channels, m.groups
        fgroups = 1 if groups == 1 else fin if groups == cin else groups
    elif rec.kind == "linear":
        cin, cout, groups, fgroups = m.in_features, m.out_features, 1, 1
    elif rec.kind == "batchnorm":
        cin = cout = m.num_features
        groups = fgroups = 1
    else:
        cin = cout = m.num_channels
        groups = fgroups = m.num_groups
    if fin % fgroups or fout % fgroups:
        raise FoldError(f"layer {rec.name}: folded channels {fin} -> {fout} are not divisible by {fgroups} groups")
    if rec.kind in ("batchnorm", "groupnorm"):
        role = "norm"
    elif sp.kind[outs[0]] == OUTPUT:
        role = "classifier"
    elif any(sp.kind[r] == INPUT for r in ins):
        role = "stem"
    elif groups > 1:
        role = "depthwise" if groups == cin else "grouped"
    else:
        role = "hidden"
    return LayerPlan(rec.name, rec.kind, role, cin, cout, groups, fin, fout, fgroups,
                     [ids[r] for r in ins], [ids[r] for r in outs], rec.in_desc.inner)


def _split_edits(a: Analysis, widths: _Widths) -> list[EditPlan]:
    edits = []
    for site in a.splits:
        new = [widths.of(a.spaces.resolve(p)) for p in site.pieces]
        if site.location is None:
            if _chunk_sizes(sum(new), len(new)) != new:
                raise UnsupportedOpError(f"cannot fold node {site.node!r}: its pieces become {new} channels, which a "
                                         f"chunk of {len(new)} cannot produce; split with explicit sizes")
        elif isinstance(site.literal, int):
            if _split_sizes(sum(new), new[0]) != new:
                raise UnsupportedOpError(f"cannot fold node {site.node!r}: split size {site.literal} cannot give "
                                         f"pieces of {new} folded channels; split with explicit sizes")
            if new[0] != site.literal:
                edits.append(EditPlan(site.node, site.location, site.literal, new[0]))
        elif list(site.literal) != new:
            edits.append(EditPlan(site.node, site.location, list(site.literal), new))
    return edits


def make_plan(a: Analysis, fold: int, width_mult: float | None = None, align: int = 1,
              classifier: str | None = None, leaf_modules: list[str] | None = None, block_of: int = 1,
              min_block: int = 0) -> FoldPlan:
    """Folded widths for analysis `a` (hidden ones // block_of, at least min(w, min_block) per image: see
    models.widths); raises FoldError / UnsupportedOpError when folding cannot work."""
    widths = _Widths(a, fold, width_mult, align, block_of, min_block)
    ids: dict[int, int] = {}
    layers = [_layer_plan(a, rec, widths, ids) for rec in a.layers.values()]
    for check in a.view_checks:
        folded = widths.of(a.spaces.resolve(check.desc)) * check.desc.inner
        if folded != check.literal:
            raise UnsupportedOpError(
                f"cannot fold {check.where}: its hard-coded size {check.literal} becomes {folded} after folding; "
                "write x.view(x.size(0), -1) or torch.flatten(x, 1), or take sizes from x.size()")
    spaces = [SpacePlan(i, a.spaces.kind[r], a.spaces.size[r], widths.leaf(r)) for r, i in ids.items()]
    per_image = [EditPlan(name, PER_IMAGE, "log_softmax", a.num_classes) for name, _ in a.per_image] if fold > 1 else []
    return FoldPlan(fold, width_mult, align, classifier, list(a.input_shape), a.num_classes,
                    list(leaf_modules or []), spaces, layers, _split_edits(a, widths) + per_image, block_of, min_block)
