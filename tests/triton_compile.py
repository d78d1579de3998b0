"""Compile the fused kernels for a GPU that is not here: Triton's frontend, LLVM and ptxas, no device.

    python tests/triton_compile.py [fp16|bf16|fp32] [ARCH]   (ARCH 90 = H100/H200; run without TRITON_INTERPRET)

Prints one line per kernel variant. The interpreter runs the kernels' Python, not Triton's GPU
compiler: type rules of loop-carried values, constexpr folding and register allocation are only
checked here (Triton 3.6 promoted a bf16 max-pool to fp32 and failed, where the interpreter passed).
"""

from __future__ import annotations

import sys

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from foldedcnn.infer.fused._conv import features_kernel
from foldedcnn.infer.fused._linear import linear_kernel


def features_signature(dt: str, raw: bool) -> dict[str, str]:
    ints = ("s0", "s1", "s2", "s3", "n_images", "n_ops", "n_bands", "n_items", "feat_size", "scratch_off", "half_size")
    sig = {name: "i32" for name in ints}
    sig.update(x_ptr="*u8" if raw else f"*{dt}", scale_ptr="*fp32", shift_ptr="*fp32", w_ptr=f"*{dt}", b_ptr="*fp32",
               meta_ptr="*i32", band_ptr="*i32", buf_ptr=f"*{dt}")
    return {name: sig.get(name, "constexpr") for name in features_kernel.arg_names}


def linear_signature(dt: str) -> dict[str, str]:
    sig = {"x_ptr": f"*{dt}", "w1_ptr": f"*{dt}", "w2_ptr": f"*{dt}", "b1_ptr": "*fp32", "b2_ptr": "*fp32",
           "out_ptr": "*fp32"}
    ints = ("x_stride", "out_stride", "M", "K1", "N1", "N2")
    return {name: sig.get(name, "i32" if name in ints else "constexpr") for name in linear_kernel.arg_names}


def main(dt: str = "fp16", arch: int = 90) -> None:
    target = GPUTarget("cuda", arch, 32)
    precision = "ieee" if dt == "fp32" else "tf32"
    for raw in (False, True):
        consts = {"RAW": raw, "FOLD": 4 if raw else 1, "IMAGE_CH": 3 if raw else 1, "BLOCK_P": 64, "BLOCK_K": 32,
                  "BLOCK_N": 64, "PRECISION": precision}
        kernel = triton.compile(ASTSource(features_kernel, features_signature(dt, raw), consts), target=target)
        print(f"features {dt} {'raw' if raw else 'folded'}: cubin {len(kernel.asm['cubin'])} bytes", flush=True)
    for split in (False, True):
        consts = {"RELU1": True, "RELU2": False, "TWO": True, "SPLIT": split, "BLOCK_M": 16, "BLOCK_K": 64,
                  "BLOCK_N1": 64 if split else 256, "BLOCK_N2": 64, "PRECISION": precision}
        kernel = triton.compile(ASTSource(linear_kernel, linear_signature(dt), consts), target=target)
        print(f"linear {dt} two layers{', split' if split else ''}: cubin {len(kernel.asm['cubin'])} bytes",
              flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:2], *map(int, sys.argv[2:3]))
