"""The classifier kernel: one or two Linear layers (+bias, +ReLU) in one launch.

    linear_kernel: x (M, K1) -> [relu](x @ W1t + b1) (M, N1) -> [relu](h @ W2t + b2) (M, N2)

W1t (K1, N1) and W2t (N1, N2) are the transposed weights (contiguous rows along the output), fp32
accumulation. With a second layer, the hidden tile h (BLOCK_M x BLOCK_N1) stays in registers and
never leaves the chip; the output is produced BLOCK_N2 columns at a time. With one layer the grid
also splits N1. With two layers and SPLIT, it splits the hidden width too: each program adds its
block's share h[:, block] @ W2t[block, :] to a zeroed fp32 output with atomics (the program of the
first block adds b2), which keeps a small batch from running on a handful of SMs (coral at f = 4,
1024 images: 256 rows, K1 = 20000); exact only without a ReLU after the second layer.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def linear_kernel(x_ptr, x_stride, w1_ptr, b1_ptr, w2_ptr, b2_ptr, out_ptr, out_stride, M, K1, N1, N2,
                  RELU1: tl.constexpr, RELU2: tl.constexpr, TWO: tl.constexpr, SPLIT: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N1: tl.constexpr, BLOCK_N2: tl.constexpr,
                  PRECISION: tl.constexpr):
    """Grid (cdiv(M, BLOCK_M), cdiv(N1, BLOCK_N1)), BLOCK_N1 >= N1 when TWO and not SPLIT; masks compute zeros."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    n1 = tl.program_id(1) * BLOCK_N1 + tl.arange(0, BLOCK_N1)
    n1_ok = n1 < N1
    acc = tl.zeros((BLOCK_M, BLOCK_N1), dtype=tl.float32)
    for k0 in range(0, K1, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        k_ok = k < K1
        a = tl.load(x_ptr + rows[:, None] * x_stride + k[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0)
        w = tl.load(w1_ptr + k[:, None] * N1 + n1[None, :], mask=k_ok[:, None] & n1_ok[None, :], other=0)
        acc = tl.dot(a.to(w.dtype), w, acc, input_precision=PRECISION)
    acc = acc + tl.load(b1_ptr + n1, mask=n1_ok, other=0.0)[None, :]
    if RELU1:
        acc = tl.maximum(acc, 0.0)
    if TWO:
        h = acc.to(w2_ptr.dtype.element_ty)  # columns >= N1 are exactly 0 and meet zero rows of W2t
        for c0 in range(0, N2, BLOCK_N2):
            n2 = c0 + tl.arange(0, BLOCK_N2)
            n2_ok = n2 < N2
            w2 = tl.load(w2_ptr + n1[:, None] * N2 + n2[None, :], mask=n1_ok[:, None] & n2_ok[None, :], other=0)
            out = tl.dot(h, w2, input_precision=PRECISION)
            first = (tl.program_id(1) == 0).to(tl.float32)  # one program per row block adds the bias
            out += tl.load(b2_ptr + n2, mask=n2_ok, other=0.0)[None, :] * first
            ptrs = out_ptr + rows[:, None] * out_stride + n2[None, :]
            if SPLIT:
                tl.atomic_add(ptrs, out, mask=row_ok[:, None] & n2_ok[None, :])
            else:
                if RELU2:
                    out = tl.maximum(out, 0.0)
                tl.store(ptrs, out.to(out_ptr.dtype.element_ty), mask=row_ok[:, None] & n2_ok[None, :])
    else:
        tl.store(out_ptr + rows[:, None] * out_stride + n1[None, :], acc.to(out_ptr.dtype.element_ty),
                 mask=row_ok[:, None] & n1_ok[None, :])


__all__ = ["linear_kernel"]
