"""The feature kernel specialised to one network: its op list unrolled, every shape a compile-time constant.

    unrolled_features_kernel(program, meta): a Triton kernel computing the same as `_conv.features_kernel` for
    that program: folded input (G, f*C, H, W) or raw images (B, C, H, W), any strides -> features in `buf`

The generic kernel reads its op table at run time, so every conv gathers a (pixels x (tap, channel))
tile with 2-D index arithmetic and six bound checks per element, and every tile is as wide as the
widest layer. Here the op list is unrolled into the kernel's source (generated per network, cached
by Triton like any kernel): channels, kernel sizes, paddings and widths are constants, a conv is a
sum over its taps of (pixels x Cin) @ (Cin x Cout) products whose row offsets and bounds are 1-D
per pixel and whose column offsets are 1-D per channel, and each op's tiles are as wide as its own
channels. Max-pools share the generic kernel's `pool_rows`, called with constants. Taps are a loop with
constant bounds, not unrolled in the source: unrolled (tl.static_range, as at commit 0e16410), Triton took
20-24 s to compile gold-int's kernel for sm_90 and 57-68 s for sot-timer's on a 2-core EPYC, against 1.6-4.1 s
as a loop, which also needs fewer registers and still moves 16-byte vectors
(benchmarks/results/cpu-2core/triton-sass-taps.md). Work items, row bands,
scratch ping-pong and barriers are those of the generic kernel.
"""

from __future__ import annotations

import functools
import hashlib
import linecache

import torch
import triton
import triton.language as tl

from ._conv import pixel_block, pool_rows
from ._program import ConvOp, FusedProgram


@triton.jit
def _conv_taps(src_ptr, s0, s1, s2, s3, g, src_row0, n_images, scale_ptr, shift_ptr, dst_ptr, dst_row0,
               w_ptr, b_ptr, lo, hi,
               FROM_INPUT: tl.constexpr, RAW: tl.constexpr, FOLD: tl.constexpr, IMAGE_CH: tl.constexpr,
               CIN: tl.constexpr, COUT: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr, PH: tl.constexpr,
               PW: tl.constexpr, H_IN: tl.constexpr, W_IN: tl.constexpr, W_OUT: tl.constexpr, RELU: tl.constexpr,
               BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    """Output rows [lo, hi) of one conv (+bias, +ReLU) -> dst (rows - dst_row0, W_OUT, COUT) contiguous.

    Source: the input (FROM_INPUT; raw images folded and normalised on the fly when RAW) at strides
    s0..s3, or the previous op's scratch rows (rows - src_row0, W_IN, CIN) contiguous. Weights (KH, KW, CIN, COUT).
    """
    ci = tl.arange(0, BLOCK_C)
    ci_ok = ci < CIN
    col_ok = ci_ok
    co = tl.arange(0, BLOCK_N)
    co_ok = co < COUT
    bias = tl.load(b_ptr + co, mask=co_ok, other=0.0)
    if FROM_INPUT:
        if RAW:
            image = g * FOLD + ci // IMAGE_CH  # fold order: image j of group g is batch index g*f + j
            channel = ci % IMAGE_CH
            col_off = image * s0 + channel * s1
            col_ok = ci_ok & (image < n_images)
            scale = tl.load(scale_ptr + channel)
            shift = tl.load(shift_ptr + channel)
        else:
            col_off = g * s0 + ci * s1
    else:
        col_off = ci
    n_pix = (hi - lo) * W_OUT
    for p0 in range(0, n_pix, BLOCK_P):
        p_ok, r, c = pixel_block(p0, lo, n_pix, W_OUT, BLOCK_P)
        acc = tl.zeros((BLOCK_P, BLOCK_N), dtype=tl.float32)
        for tap in range(KH * KW):
            sr = r + (tap // KW - PH)
            sc = c + (tap % KW - PW)
            ok = p_ok & (sr >= 0) & (sr < H_IN) & (sc >= 0) & (sc < W_IN)
            mask = ok[:, None] & col_ok[None, :]
            if FROM_INPUT:
                a = tl.load(src_ptr + (sr * s2 + sc * s3)[:, None] + col_off[None, :], mask=mask, other=0)
                if RAW:
                    a = tl.where(mask, a.to(tl.float32) * scale[None, :] + shift[None, :], 0.0)
            else:
                a = tl.load(src_ptr + (((sr - src_row0) * W_IN + sc) * CIN)[:, None] + col_off[None, :], mask=mask,
                            other=0)
            w = tl.load(w_ptr + (tap * CIN + ci)[:, None] * COUT + co[None, :],
                        mask=ci_ok[:, None] & co_ok[None, :], other=0)
            acc = tl.dot(a.to(w.dtype), w, acc, input_precision=PRECISION)
        acc = acc + bias[None, :]
        if RELU:
            acc = tl.maximum(acc, 0.0)
        out = dst_ptr + ((r - dst_row0) * W_OUT + c)[:, None] * COUT + co[None, :]
        tl.store(out, acc.to(dst_ptr.dtype.element_ty), mask=p_ok[:, None] & co_ok[None, :])


_HEAD = '''
@triton.jit
def unrolled_features(x_ptr, s0, s1, s2, s3, n_images, scale_ptr, shift_ptr, w_ptr, b_ptr, band_ptr, buf_ptr,
                      n_bands, n_items, feat_stride, scratch_off, half_size,
                      RAW: tl.constexpr, FOLD: tl.constexpr, IMAGE_CH: tl.constexpr, BLOCK_P: tl.constexpr,
                      PRECISION: tl.constexpr):
    """{describe}"""
    pid = tl.program_id(0)
    slot = scratch_off + pid * 2 * half_size
    for item in range(pid, n_items, tl.num_programs(0)):
        g = item // n_bands
        band = band_ptr + (item % n_bands) * {band_stride}
'''


def _pow2(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


def _op_lines(program: FusedProgram, meta: torch.Tensor) -> list[str]:
    """The kernel body's lines for each op: its row range, its call with constants, a barrier between ops."""
    last = len(program.features) - 1
    lines = []
    for i, (op, row) in enumerate(zip(program.features, meta.tolist(), strict=True)):
        _, kh, kw, ah, aw, cin, cout, h_in, w_in, w_out, w_off, b_off, relu = row
        lines.append(f"lo{i} = tl.load(band + {2 * i})")
        lines.append(f"hi{i} = tl.load(band + {2 * i + 1})")
        dst = "buf_ptr + g * feat_stride, 0" if i == last else f"buf_ptr + slot + {i % 2} * half_size, lo{i}"
        src = f"buf_ptr + slot + {(i - 1) % 2} * half_size"
        if isinstance(op, ConvOp):
            source = ("x_ptr, s0, s1, s2, s3, g, 0" if i == 0 else f"{src}, 0, 1, 0, 0, g, lo{i - 1}")
            lines.append(
                f"_conv_taps({source}, n_images, scale_ptr, shift_ptr, {dst}, w_ptr + {w_off}, b_ptr + {b_off}, "
                f"lo{i}, hi{i}, {i == 0}, RAW, FOLD, IMAGE_CH, {cin}, {cout}, {kh}, {kw}, {ah}, {aw}, {h_in}, "
                f"{w_in}, {w_out}, {bool(relu)}, BLOCK_P, {_pow2(cin)}, {_pow2(cout)}, PRECISION)")
        else:
            lines.append(f"pool_rows({src}, lo{i - 1}, {dst}, lo{i}, hi{i}, {cin}, {kh}, {kw}, {ah}, {aw}, "
                         f"{w_in}, {w_out}, BLOCK_P, {_pow2(cin)})")
        if i < last:
            lines.append("tl.debug_barrier()")
    return lines


def kernel_source(program: FusedProgram, meta: torch.Tensor) -> str:
    """The Python source of the kernel specialised to `program`, whose op table (`_schedule.op_table`) is `meta`
    (shapes and weight offsets as literals; weights are arguments)."""
    head = _HEAD.format(describe=program.describe(), band_stride=2 * len(program.features))
    return head + "".join(f"        {line}\n" for line in _op_lines(program, meta))


@functools.lru_cache(maxsize=64)
def _compile_source(source: str) -> triton.JITFunction:
    # Triton reads a kernel's source with inspect, which finds generated code through linecache
    filename = f"<foldedcnn-unrolled-{hashlib.sha256(source.encode()).hexdigest()[:16]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    scope = {"__name__": __name__, "triton": triton, "tl": tl, "_conv_taps": _conv_taps, "pool_rows": pool_rows}
    exec(compile(source, filename, "exec"), scope)  # our own generated source, from the program's integers
    return scope["unrolled_features"]


def unrolled_features_kernel(program: FusedProgram, meta: torch.Tensor) -> triton.JITFunction:
    """The kernel for `program` and its op table `meta` (one per distinct source, cached in this process and on
    disk by Triton).

    Arguments: (x_ptr, s0..s3, n_images, scale_ptr, shift_ptr, w_ptr, b_ptr, band_ptr, buf_ptr, n_bands, n_items,
    feat_stride, scratch_off, half_size; RAW, FOLD, IMAGE_CH, BLOCK_P, PRECISION) with w_ptr, b_ptr the packed
    tensors of `_schedule.op_table` and the rest as for the generic kernel.
    """
    return _compile_source(kernel_source(program, meta))
