"""The feature kernel: every conv (+bias +ReLU) and max-pool of a network in one launch, NHWC.

    features_kernel: folded input (G, f*C, H, W) any strides, or raw images (B, C, H, W) any strides
                     (uint8 or float, folded and normalised on the fly) -> features (G, Hf*Wf*Cf) in `buf`,
                     rows `feat_stride` apart

Work item = (folded image g, band of output rows of the last op). A program walks the op list
(`meta`, one row of META_FIELDS int32 per op) for its item: each op computes the rows of its output
that the band needs (`bands`, computed on the host, halo rows recomputed by neighbouring bands)
and writes them to the program's private scratch slot in `buf` (two halves, ping-pong), the last op
writes the item's rows of the feature map. A barrier separates ops, so an op reads only what the
whole program wrote before it. Intermediate activations thus never round-trip through HBM as whole
tensors: they live in a per-program scratch slot that is reused item after item by a persistent grid,
small enough (the band size is chosen for it) to stay in L2 — the "per-program scratch" fallback of
keeping activations on chip, which Triton's lack of shared-memory indexing and register shifts makes
the portable choice (Triton 3.6 and 3.9).

A conv is an implicit GEMM: (BLOCK_P pixels x BLOCK_K (tap, input channel) columns) @ (BLOCK_K x
BLOCK_N output channels) with `tl.dot`, fp32 accumulation, channels padded to the blocks by masks. The op
list is read at run time (one compiled kernel serves any network of this shape); BLOCK_N covers the
widest op, so narrow ops waste part of a tile.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ._schedule import FIELDS, OpKind

# Columns of the int32 op table (_schedule.FIELDS) and op kinds, as constants the kernels can read.
KIND, KH, KW, AH, AW, CIN, COUT, H_IN, W_IN, W_OUT, W_OFF, B_OFF, RELU = (
    tl.constexpr(FIELDS.index(name))
    for name in ("kind", "kh", "kw", "ah", "aw", "cin", "cout", "h_in", "w_in", "w_out", "w_off", "b_off", "relu"))
META_FIELDS = tl.constexpr(len(FIELDS))
CONV = tl.constexpr(OpKind.CONV)


@triton.jit
def pixel_block(p0, lo, n_pix, w_out, BLOCK_P: tl.constexpr):
    """BLOCK_P output pixels from flat index p0 of rows [lo, ...) of width w_out: (in range, row, column), 1-D each."""
    pix = p0 + tl.arange(0, BLOCK_P)
    return pix < n_pix, lo + pix // w_out, pix % w_out


@triton.jit
def _load_source(src_ptr, s0, s1, s2, s3, g, row0, sr, sc, mask, ci, n_images, scale_ptr, shift_ptr,
                 FROM_INPUT: tl.constexpr, RAW: tl.constexpr, FOLD: tl.constexpr, IMAGE_CH: tl.constexpr):
    """(BLOCK_P, BLOCK_K) source values at rows `sr`, columns `sc` (2-D), channels `ci` (1-D); 0 where masked."""
    if FROM_INPUT:
        if RAW:
            image = g * FOLD + ci // IMAGE_CH  # fold order: image j of group g is batch index g*f + j
            cc = ci % IMAGE_CH
            mask = mask & (image < n_images)[None, :]
            raw = tl.load(src_ptr + (image * s0 + cc * s1)[None, :] + sr * s2 + sc * s3, mask=mask, other=0)
            scale = tl.load(scale_ptr + cc)
            shift = tl.load(shift_ptr + cc)
            value = tl.where(mask, raw.to(tl.float32) * scale[None, :] + shift[None, :], 0.0)
        else:
            value = tl.load(src_ptr + g * s0 + (ci * s1)[None, :] + sr * s2 + sc * s3, mask=mask, other=0)
    else:
        value = tl.load(src_ptr + ci[None, :] * s1 + (sr - row0) * s2 + sc * s3, mask=mask, other=0)
    return value


@triton.jit
def _conv(src_ptr, s0, s1, s2, s3, g, src_row0, n_images, scale_ptr, shift_ptr, dst_ptr, dst_row0,
          w_ptr, b_ptr, meta, lo, hi,
          FROM_INPUT: tl.constexpr, RAW: tl.constexpr, FOLD: tl.constexpr, IMAGE_CH: tl.constexpr,
          BLOCK_P: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    """Output rows [lo, hi) of one conv op (+bias, +ReLU) -> dst (rows - dst_row0, W_out, Cout) contiguous.

    Implicit GEMM over K = (tap, input channel), the packed weights' row order: a K block may span
    taps, so a 3-channel first layer fills one 32-wide block with 27 useful columns instead of 9
    blocks with 3. Tap and channel are decoded once per K column (1-D), not per element.
    """
    kw = tl.load(meta + KW)
    ph = tl.load(meta + AH)
    pw = tl.load(meta + AW)
    cin = tl.load(meta + CIN)
    cout = tl.load(meta + COUT)
    h_in = tl.load(meta + H_IN)
    w_in = tl.load(meta + W_IN)
    w_out = tl.load(meta + W_OUT)
    w_base = w_ptr + tl.load(meta + W_OFF)
    relu = tl.load(meta + RELU)
    n_k = tl.load(meta + KH) * kw * cin
    co = tl.arange(0, BLOCK_N)
    co_ok = co < cout
    bias = tl.load(b_ptr + tl.load(meta + B_OFF) + co, mask=co_ok, other=0.0)
    n_pix = (hi - lo) * w_out
    for p0 in range(0, n_pix, BLOCK_P):
        p_ok, r, c = pixel_block(p0, lo, n_pix, w_out, BLOCK_P)
        acc = tl.zeros((BLOCK_P, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, n_k, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            k_ok = k < n_k
            tap = k // cin
            ci = k % cin
            sr = r[:, None] + (tap // kw - ph)[None, :]
            sc = c[:, None] + (tap % kw - pw)[None, :]
            mask = p_ok[:, None] & k_ok[None, :] & (sr >= 0) & (sr < h_in) & (sc >= 0) & (sc < w_in)
            a = _load_source(src_ptr, s0, s1, s2, s3, g, src_row0, sr, sc, mask, ci, n_images,
                             scale_ptr, shift_ptr, FROM_INPUT, RAW, FOLD, IMAGE_CH)
            w = tl.load(w_base + k[:, None] * cout + co[None, :], mask=k_ok[:, None] & co_ok[None, :], other=0)
            acc = tl.dot(a.to(w.dtype), w, acc, input_precision=PRECISION)
        acc = acc + bias[None, :]
        acc = tl.where(relu != 0, tl.maximum(acc, 0.0), acc)
        out = dst_ptr + ((r - dst_row0) * w_out + c)[:, None] * cout + co[None, :]
        tl.store(out, acc.to(dst_ptr.dtype.element_ty), mask=p_ok[:, None] & co_ok[None, :])


@triton.jit
def pool_rows(src_ptr, src_row0, dst_ptr, dst_row0, lo, hi, C, KH, KW, SH, SW, W_IN, W_OUT,
              BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr):
    """Output rows [lo, hi) of a max-pool: scratch (rows - src_row0, W_IN, C) -> dst (rows - dst_row0, W_OUT, C).

    The shapes are run-time values here (the generic kernel) or constants (the unrolled kernel passes literals,
    which Triton specialises the call on)."""
    co = tl.arange(0, BLOCK_N)
    co_ok = co < C
    n_pix = (hi - lo) * W_OUT
    for p0 in range(0, n_pix, BLOCK_P):
        p_ok, r, c = pixel_block(p0, lo, n_pix, W_OUT, BLOCK_P)
        mask = p_ok[:, None] & co_ok[None, :]
        best = tl.full((BLOCK_P, BLOCK_N), float("-inf"), dtype=tl.float32)  # exact for every dtype
        for tap in range(0, KH * KW):
            row = (r * SH + tap // KW - src_row0) * W_IN + c * SW + tap % KW
            v = tl.load(src_ptr + (row * C)[:, None] + co[None, :], mask=mask, other=float("-inf"))
            best = tl.maximum(best, v.to(tl.float32))
        tl.store(dst_ptr + ((r - dst_row0) * W_OUT + c)[:, None] * C + co[None, :],
                 best.to(dst_ptr.dtype.element_ty), mask=mask)


@triton.jit
def features_kernel(x_ptr, s0, s1, s2, s3, n_images, scale_ptr, shift_ptr,
                    w_ptr, b_ptr, meta_ptr, band_ptr, buf_ptr,
                    n_ops, n_bands, n_items, feat_stride, scratch_off, half_size,
                    RAW: tl.constexpr, FOLD: tl.constexpr, IMAGE_CH: tl.constexpr,
                    BLOCK_P: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    """Persistent grid over items (g, band); see the module docstring. `bands` is (n_bands, n_ops, 2) [lo, hi)."""
    pid = tl.program_id(0)
    slot = scratch_off + pid * 2 * half_size
    for item in range(pid, n_items, tl.num_programs(0)):
        g = item // n_bands
        band = band_ptr + (item % n_bands) * n_ops * 2
        # op 0 reads the input
        lo = tl.load(band)
        hi = tl.load(band + 1)
        last = n_ops == 1
        dst = buf_ptr + tl.where(last, g * feat_stride, slot)
        _conv(x_ptr, s0, s1, s2, s3, g, 0, n_images, scale_ptr, shift_ptr, dst, tl.where(last, 0, lo),
              w_ptr, b_ptr, meta_ptr, lo, hi, True, RAW, FOLD, IMAGE_CH, BLOCK_P, BLOCK_K, BLOCK_N, PRECISION)
        tl.debug_barrier()
        # ops 1.. read the previous op's rows from the scratch half it wrote
        for i in range(1, n_ops):
            meta = meta_ptr + i * META_FIELDS
            src = buf_ptr + slot + ((i + 1) % 2) * half_size
            src_row0 = lo
            lo = tl.load(band + 2 * i)
            hi = tl.load(band + 2 * i + 1)
            last = i == n_ops - 1
            dst = buf_ptr + tl.where(last, g * feat_stride, slot + (i % 2) * half_size)
            dst_row0 = tl.where(last, 0, lo)
            if tl.load(meta + KIND) == CONV:
                cin = tl.load(meta + CIN)
                _conv(src, 0, 1, tl.load(meta + W_IN) * cin, cin, g, src_row0, n_images, scale_ptr, shift_ptr,
                      dst, dst_row0, w_ptr, b_ptr, meta, lo, hi,
                      False, RAW, FOLD, IMAGE_CH, BLOCK_P, BLOCK_K, BLOCK_N, PRECISION)
            else:
                pool_rows(src, src_row0, dst, dst_row0, lo, hi, tl.load(meta + CIN), tl.load(meta + KH),
                          tl.load(meta + KW), tl.load(meta + AH), tl.load(meta + AW), tl.load(meta + W_IN),
                          tl.load(meta + W_OUT), BLOCK_P, BLOCK_N)
            tl.debug_barrier()

