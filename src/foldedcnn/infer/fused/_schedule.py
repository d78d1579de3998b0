"""Host side of the feature kernel, plain torch: the op table, packed weights and the row bands.

A band is a range of output rows of the last feature op. Walking the ops backwards, each op must
produce the rows its successor reads: a conv (kh, ph) needs input rows [lo - ph, hi - 1 - ph + kh)
clipped to the map (the rest is zero padding), a max-pool (kh, sh) rows [lo*sh, (hi-1)*sh + kh).
Neighbouring bands overlap there: the halo rows are recomputed, never exchanged. Narrow bands keep
a program's scratch small; one band per image computes everything exactly once.
"""

from __future__ import annotations

from enum import IntEnum

import torch

from ._program import ConvOp, FusedProgram, PoolOp, UnfusableModelError

#: Columns of the op table: kind, kernel (kh, kw), conv padding or pool stride (ah, aw), channels in/out,
#: input height/width, output width, offsets of the op's weights and bias in the packed tensors, ReLU flag.
FIELDS = ("kind", "kh", "kw", "ah", "aw", "cin", "cout", "h_in", "w_in", "w_out", "w_off", "b_off", "relu")


#: Each conv's packed weights start on a multiple of this many elements: 16-byte vectors for the unrolled kernel.
WEIGHT_ALIGN = 16


class OpKind(IntEnum):
    CONV = 0
    POOL = 1


def op_table(program: FusedProgram) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(meta int32 (n_ops, len(FIELDS)), conv weights float32 packed (kh, kw, Cin, Cout) per conv, each starting on
    a multiple of WEIGHT_ALIGN elements (zeros between), biases float32)."""
    rows, weights, biases = [], [], []
    w_off = b_off = 0
    for op in program.features:
        (cin, h_in, w_in), (cout, _, w_out) = op.in_shape, op.out_shape
        if isinstance(op, ConvOp):
            kh, kw = op.weight.shape[2:]
            row = dict(kind=OpKind.CONV, kh=kh, kw=kw, ah=op.padding[0], aw=op.padding[1], relu=int(op.relu),
                       w_off=w_off, b_off=b_off)
            packed = op.weight.permute(2, 3, 1, 0).reshape(-1)
            weights.append(torch.cat([packed, packed.new_zeros(-packed.numel() % WEIGHT_ALIGN)]))
            biases.append(op.bias)
            w_off += weights[-1].numel()
            b_off += cout
        else:
            row = dict(kind=OpKind.POOL, kh=op.kernel[0], kw=op.kernel[1], ah=op.stride[0], aw=op.stride[1], relu=0,
                       w_off=0, b_off=0)
        row.update(cin=cin, cout=cout, h_in=h_in, w_in=w_in, w_out=w_out)
        rows.append([int(row[f]) for f in FIELDS])
    return torch.tensor(rows, dtype=torch.int32), torch.cat(weights), torch.cat(biases)


def _needed_rows(op: ConvOp | PoolOp, lo: int, hi: int) -> tuple[int, int]:
    """Rows of `op`'s input that its output rows [lo, hi) read (inside the map)."""
    if isinstance(op, ConvOp):
        kh, ph = op.weight.shape[2], op.padding[0]
        return max(lo - ph, 0), min(hi - 1 - ph + kh, op.in_shape[1])
    return lo * op.stride[0], (hi - 1) * op.stride[0] + op.kernel[0]


def band_table(program: FusedProgram, band_rows: int) -> torch.Tensor:
    """int32 (n_bands, n_ops, 2): output rows [lo, hi) each op computes for each band of `band_rows` final rows."""
    height = program.features[-1].out_shape[1]
    table = []
    for start in range(0, height, band_rows):
        lo, hi = start, min(start + band_rows, height)
        ranges = []
        for op in reversed(program.features):
            ranges.append((lo, hi))
            lo, hi = _needed_rows(op, lo, hi)
        table.append(ranges[::-1])
    return torch.tensor(table, dtype=torch.int32)


def scratch_half(program: FusedProgram, bands: torch.Tensor) -> int:
    """Elements of one scratch half: the largest band of any op but the last (which writes the features)."""
    rows = (bands[:, :-1, 1] - bands[:, :-1, 0]).amax(dim=0).tolist() if len(program.features) > 1 else []
    return max([1] + [n * op.out_shape[2] * op.out_shape[0] for n, op in zip(rows, program.features[:-1], strict=True)])


def choose_band_rows(program: FusedProgram, budget: int) -> int:
    """The most final rows per band whose scratch (two halves) fits `budget` elements; at least 1."""
    height = program.features[-1].out_shape[1]
    for rows in range(height, 1, -1):
        if 2 * scratch_half(program, band_table(program, rows)) <= budget:
            return rows
    return 1


#: Widest feature map the feature kernel takes: one (BLOCK_P x BLOCK_N) fp32 accumulator holds every output channel.
MAX_CHANNELS = 256


def check_kernel_limits(program: FusedProgram) -> FusedProgram:
    """`program` unchanged, or UnfusableModelError when it exceeds what the kernels hold on chip."""
    for op in program.features:
        if op.out_shape[0] > MAX_CHANNELS:
            raise UnfusableModelError(f"{op.name} has {op.out_shape[0]} channels; the fused kernel takes at most "
                                      f"{MAX_CHANNELS}")
    return program
