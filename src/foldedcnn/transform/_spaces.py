"""Channel spaces: what each tensor's channel axis is made of, and which axes must stay equal.

A *space* is a run of channels that folding widens as one unit (a conv's output, the input
image channels, the logits). A tensor's channel axis is a `ChannelDesc`: a sequence of spaces
(one, or several after a concat) and `inner`, the elements per channel once the tensor is
flattened to features (H*W after `flatten(x, 1)`, else 1).

Spaces live in a union-find: a residual add joins its operands' spaces, so both are widened
alike. A split that cuts a space *refines* it into pieces, each a space of its own; a space
with pieces is the concatenation of them. Each set of joined spaces has a kind:

- "scaled": a hidden width, widened by width_mult (the default),
- "input": the image channels, folded to f*C,
- "output": the logits, folded to f*K,
- "derived": m times another channel axis (a depthwise conv with channel multiplier m).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UnsupportedOpError

SCALED, INPUT, OUTPUT, DERIVED = "scaled", "input", "output", "derived"


@dataclass(frozen=True)
class ChannelDesc:
    """The channel axis of a tensor: `parts` (space ids, concatenated) times `inner` elements each."""

    parts: tuple[int, ...]
    inner: int = 1


class SpaceConflict(UnsupportedOpError):
    """Two channel axes that folding cannot keep consistent (raised with the node added by the analysis)."""


class Spaces:
    """Union-find over channel spaces, with kinds, divisibility requirements and refinements."""

    def __init__(self) -> None:
        self._parent: list[int] = []
        self.size: list[int] = []
        self.kind: dict[int, str] = {}
        self.derived: dict[int, tuple[ChannelDesc, int]] = {}
        self.multiple: dict[int, int] = {}
        self.pieces: dict[int, list[int]] = {}

    def new(self, size: int, kind: str = SCALED) -> int:
        """A fresh space of `size` original channels."""
        self._parent.append(len(self._parent))
        self.size.append(int(size))
        self.kind[len(self._parent) - 1] = kind
        return len(self._parent) - 1

    def new_derived(self, source: ChannelDesc, mult: int) -> int:
        """A space of `mult` times the channels of `source` (depthwise channel multiplier)."""
        space = self.new(self.channels(source) * mult, DERIVED)
        self.derived[space] = (source, mult)
        return space

    def find(self, a: int) -> int:
        while self._parent[a] != a:
            self._parent[a] = self._parent[self._parent[a]]
            a = self._parent[a]
        return a

    def leaves(self, a: int) -> list[int]:
        """The unrefined spaces that make up space `a`, in channel order."""
        r = self.find(a)
        if r not in self.pieces:
            return [r]
        return [leaf for p in self.pieces[r] for leaf in self.leaves(p)]

    def resolve(self, desc: ChannelDesc) -> list[int]:
        """The unrefined spaces of a channel axis, in channel order."""
        return [leaf for p in desc.parts for leaf in self.leaves(p)]

    def channels(self, desc: ChannelDesc) -> int:
        """Original channel count of `desc` (without `inner`)."""
        return sum(self.size[leaf] for leaf in self.resolve(desc))

    def union(self, a: int, b: int) -> None:
        """Join spaces `a` and `b` (same original size): they will be widened identically."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] != self.size[rb]:
            raise SpaceConflict(f"cannot join channel spaces of {self.size[ra]} and {self.size[rb]} channels")
        ka, kb = self.kind[ra], self.kind[rb]
        if SCALED not in (ka, kb) and (ka != kb or ka == DERIVED):
            raise SpaceConflict(f"cannot join a {ka!r} channel space with a {kb!r} one (e.g. logits added to images)")
        if (ka != SCALED or kb != SCALED) and (ra in self.pieces or rb in self.pieces):
            raise SpaceConflict("cannot split the folded input or output channels")
        self._parent[rb] = ra
        if ka == SCALED:
            self.kind[ra] = kb
            if kb == DERIVED:
                self.derived[ra] = self.derived[rb]
        self.multiple[ra] = math.lcm(self.multiple.get(ra, 1), self.multiple.get(rb, 1))
        pa, pb = self.pieces.get(ra), self.pieces.get(rb)
        if pa is None and pb is not None:
            self.pieces[ra] = pb
        elif pa is not None and pb is not None:
            if [self.size[self.find(p)] for p in pa] != [self.size[self.find(p)] for p in pb]:
                raise SpaceConflict("a space is split in two different ways")
            for p, q in zip(pa, pb, strict=True):
                self.union(p, q)

    def _refine(self, leaf: int, cuts: list[int]) -> list[int]:
        """Cut unrefined space `leaf` at offsets `cuts` into new spaces; returns them."""
        r = self.find(leaf)
        if self.kind[r] != SCALED:
            raise SpaceConflict(f"cannot split a {self.kind[r]!r} channel space")
        bounds = [0, *cuts, self.size[r]]
        self.pieces[r] = [self.new(b - a) for a, b in zip(bounds, bounds[1:], strict=False)]
        return self.pieces[r]

    def split(self, desc: ChannelDesc, sizes: list[int]) -> list[ChannelDesc]:
        """Cut channel axis `desc` into consecutive runs of `sizes` original channels."""
        if sum(sizes) != self.channels(desc):
            raise SpaceConflict(f"split sizes {sizes} do not add up to {self.channels(desc)} channels")
        cuts = [sum(sizes[:i]) for i in range(1, len(sizes))]
        leaves: list[int] = []
        pos = 0
        for leaf in self.resolve(desc):
            size = self.size[leaf]
            inside = [c - pos for c in cuts if pos < c < pos + size]
            leaves += self._refine(leaf, inside) if inside else [leaf]
            pos += size
        out: list[ChannelDesc] = []
        for size in sizes:
            parts: list[int] = []
            while sum(self.size[self.find(p)] for p in parts) < size:
                parts.append(leaves.pop(0))
            out.append(ChannelDesc(tuple(parts), desc.inner))
        return out

    def join(self, a: ChannelDesc, b: ChannelDesc) -> None:
        """Make channel axes `a` and `b` equal (residual add, SE scaling), cutting spaces as needed."""
        if a.inner != b.inner:
            raise SpaceConflict("cannot join a flattened feature axis with a channel axis")
        la, lb = self.resolve(a), self.resolve(b)
        sa, sb = [self.size[x] for x in la], [self.size[x] for x in lb]
        if sa != sb:
            bounds = sorted({sum(sa[:i]) for i in range(len(sa) + 1)} | {sum(sb[:i]) for i in range(len(sb) + 1)})
            common = [y - x for x, y in zip(bounds, bounds[1:], strict=False)]
            la = [p for d in self.split(a, common) for p in self.resolve(d)]
            lb = [p for d in self.split(b, common) for p in self.resolve(d)]
        for x, y in zip(la, lb, strict=True):
            self.union(x, y)

    def require_multiple(self, desc: ChannelDesc, m: int) -> None:
        """Keep the folded width of `desc` divisible by `m` (groups), pushed to each concat part."""
        leaves = self.resolve(desc)
        if len(leaves) > 1 and any(self.size[x] % m for x in leaves):
            sizes = [self.size[x] for x in leaves]
            raise SpaceConflict(f"the concatenated parts {sizes} are not each divisible by {m} groups")
        for x in leaves:
            self.multiple[x] = math.lcm(self.multiple.get(x, 1), m)
