"""Compile the fused kernels for a GPU that is not here, and show what that GPU would run.

    python benchmarks/triton_sass.py [--dtype float16] [--arch 90] [--models ...] [--folds 1 4] [--out FILE.md]
    (without TRITON_INTERPRET; no GPU needed: Triton's frontend, LLVM, and the ptxas and cuobjdump of its wheel)
    Another Triton, e.g. the GPU image's: pip install --no-deps --target /tmp/t36 triton==3.6.0, then run it with
    PYTHONPATH=/tmp/t36:src (triton-sass-triton3.6.md)

For each model, fold, input (the engine's folded NHWC buffer, or raw uint8 (B, H, W, C) images) and
feature kernel (`unrolled`: specialised to the network, `generic`: one kernel reading an op table), it
builds the triton backend's launches at `--batch` images, specialises their arguments exactly as a launch
of this Triton version would (alignment, divisibility by 16, ints equal to 1), compiles them for sm_ARCH
and reads the result: seconds to compile on this machine (an empty Triton cache, the script's own
temporary one: near 0 where the same kernel was compiled earlier in the run), registers and spilled
bytes (ptxas -v), and the instruction mix of the SASS (cuobjdump -sass): tensor-core ops, global loads
by width (16-byte vectors, cp.async into shared memory, 2-byte scalars) and integer/address
instructions. These are counts in the code, not executed instructions: a loop body counts once (as
often as the compiler copied it). They show what the compiler made of a kernel; speed is measured on a
GPU only (benchmarks/triton_kernels.py).

The interpreter tests run the kernels' Python, not Triton's GPU compiler: type rules of loop-carried
values, constexpr folding and register allocation are only checked here (Triton 3.6 promoted a bf16
max-pool to fp32 and failed, where the interpreter passed). tests/test_infer_triton.py runs this script.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

# every kernel compiled afresh, so that compile_s is the compile time, not a cache hit (before Triton is imported)
_CACHE = tempfile.TemporaryDirectory(prefix="triton-sass-")
os.environ["TRITON_CACHE_DIR"] = _CACHE.name

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.backends.nvidia.compiler import CUDABackend  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402
from triton.runtime.jit import create_function_from_signature  # noqa: E402

from foldedcnn.device import device_name  # noqa: E402
from foldedcnn.infer.fused import fused_program  # noqa: E402
from foldedcnn.infer.fused._run import FusedRunner, KernelCall, Tiling  # noqa: E402
from foldedcnn.models import create_model, get_spec  # noqa: E402
from foldedcnn.tables import markdown_table  # noqa: E402

BIN = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
INTEGER = ("IMAD", "IADD3", "VIADD", "ISETP", "LEA", "LOP3", "SHF", "SEL", "IABS", "IMNMX", "PRMT")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["noscope-coral", "game-lol-gold-int"])
    p.add_argument("--folds", nargs="+", type=int, default=[1, 4])
    p.add_argument("--align", type=int, default=8, help="round folded widths up to a multiple (as the GPU bench)")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90: H100/H200)")
    p.add_argument("--batch", type=int, default=1024, help="images per forward (sets the launches' arguments)")
    p.add_argument("--sms", type=int, default=132, help="multiprocessors of the target (sets the persistent grid)")
    p.add_argument("--out", type=Path, help="also write the table (Markdown, with this command) here")
    return p.parse_args(argv)


def compile_call(call: KernelCall, target: GPUTarget):
    """`call` compiled for `target` as a launch would compile it (same specialisation and options)."""
    backend = CUDABackend(target)
    kernel = call.kernel
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    kwargs = dict(call.constants, num_warps=call.num_warps)
    bound, specialization, options = binder(*call.args, **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, kwargs, bound, specialization, options)
    return triton.compile(ASTSource(kernel, signature, constexprs, attrs), target=target, options=options.__dict__)


def _tool(name: str, *args: str) -> str:
    done = subprocess.run([str(BIN / name), *args], capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


def read_compiled(compiled, arch: int) -> dict[str, int]:
    """Registers, spills, cubin size and SASS instruction counts of a compiled kernel."""
    with tempfile.TemporaryDirectory() as tmp:
        ptx, cubin = Path(tmp) / "k.ptx", Path(tmp) / "k.cubin"
        ptx.write_text(compiled.asm["ptx"])
        cubin.write_bytes(compiled.asm["cubin"])
        suffix = "a" if arch >= 90 else ""
        # the wheel's ptxas-blackwell is the newest one; it reads the PTX versions Triton writes
        report = _tool("ptxas-blackwell", "-v", f"-arch=sm_{arch}{suffix}", str(ptx), "-o", str(Path(tmp) / "v.o"))
        sass = _tool("cuobjdump", "-sass", str(cubin))
    ops = re.findall(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", sass)
    kinds = Counter(op.split(".")[0] for op in ops)
    loads = Counter(op for op in ops if op.startswith(("LDG", "LDGSTS")))
    return {
        "registers": int(re.search(r"Used (\d+) registers", report).group(1)),
        "spill_bytes": int(re.search(r"(\d+) bytes spill stores", report).group(1)),
        "sass": len(ops),
        "tensor_core": kinds["HGMMA"] + kinds["HMMA"],
        "loads_16B": loads["LDG.E.128"] + loads["LDG.E.128.CONSTANT"],
        "async_16B": sum(n for op, n in loads.items() if op.startswith("LDGSTS") and op.endswith(".128")),
        "loads_2B": sum(n for op, n in loads.items() if op.endswith((".U16", ".S16"))),
        "integer": sum(kinds[k] for k in INTEGER),
        "cubin_bytes": len(compiled.asm["cubin"]),
    }


def forward_calls(name: str, fold: int, args: argparse.Namespace, unrolled: bool, raw: bool) -> list[KernelCall]:
    """The triton backend's launches for one forward of `args.batch` images (CPU tensors of the real shapes)."""
    c, h, w = get_spec(name).input_shape
    dtype = getattr(torch, args.dtype)
    program = fused_program(create_model(name, fold, align=args.align if fold > 1 else 1), (fold * c, h, w))
    programs = args.sms * (2 if max(op.out_shape[0] for op in program.features) <= 64 else 1)
    runner = FusedRunner(program, torch.device("cpu"), dtype, Tiling(programs=programs, unrolled=unrolled))
    if raw:
        images = torch.empty(args.batch, h, w, c, dtype=torch.uint8).permute(0, 3, 1, 2)
        return runner.calls_images(images, fold, torch.ones(c), torch.zeros(c))
    groups = -(-args.batch // fold)
    folded = torch.empty(groups, fold * c, h, w, dtype=dtype).to(memory_format=torch.channels_last)
    return runner.calls_folded(folded)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        print("run without TRITON_INTERPRET=1: the interpreter compiles nothing", file=sys.stderr)
        return 2
    target = GPUTarget("cuda", args.arch, 32)
    rows = []
    for name in args.models:
        for fold in args.folds:
            launches = [(raw, unrolled, forward_calls(name, fold, args, unrolled, raw))
                        for raw in (False, True) for unrolled in (True, False)]
            named = [("uint8" if raw else "folded", "unrolled" if unrolled else "generic", calls[0])
                     for raw, unrolled, calls in launches]
            named += [("any", f"linear-{i}", call) for i, call in enumerate(launches[0][2][1:], 1)]
            for given, kernel, call in named:  # the classifier launches are the same for every feature kernel
                t0 = time.perf_counter()
                compiled = compile_call(call, target)
                row = {"model": name, "fold": fold, "input": given, "kernel": kernel,
                       "compile_s": round(time.perf_counter() - t0, 1), **read_compiled(compiled, args.arch)}
                rows.append(row)
                print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    table = markdown_table(rows)
    print(table)
    if args.out:
        path = os.environ.get("PYTHONPATH", "src")  # another Triton may come first, e.g. the GPU image's version
        command = f"env PYTHONPATH={path} .venv/bin/python benchmarks/triton_sass.py " + " ".join(argv or sys.argv[1:])
        args.out.write_text(f"# The fused kernels compiled for sm_{args.arch}, {args.dtype}, batch {args.batch} "
                            f"(static counts)\n\n{__doc__.split(chr(10) + chr(10))[2]}\n\n{table}\n\n"
                            f"Command: `{command}`\nMachine (compile_s): {device_name('cpu')}; Triton "
                            f"{triton.__version__}, torch {torch.__version__}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
