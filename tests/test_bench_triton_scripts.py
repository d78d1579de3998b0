"""The fused kernels' benchmark scripts: triton_kernels.py (GPU timing) and triton_sass.py (compiled for sm_90 here).

The interpreter tests (test_infer_triton.py) run the kernels' Python; only triton_sass.py compiles them as a GPU would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bench_scripts import bench_script

pytest.importorskip("triton")


def test_gpu_benchmark_parses_its_arguments_and_needs_cuda():
    with bench_script("triton_kernels") as bench:
        args = bench.parse_args(["--models", "noscope-coral", "--folds", "1", "4", "--variants", "triton", "torch"])
        assert (args.batch, args.dtype, args.folds, args.variants) == (1024, "float16", [1, 4], ["triton", "torch"])
        assert args.max_autotune_folds == [1] and args.tilings == []
        assert bench.parse_args(["--tilings", "128x4x2", "64x8x1"]).tilings == ["128x4x2", "64x8x1"]
        for wrong in ("100x4x2", "64x6x2", "64x4"):  # BLOCK_P a power of 2; 4 or 8 warps; programs per SM given
            with pytest.raises(SystemExit):
                bench.parse_args(["--tilings", wrong])
        tiled = bench.tiling_of("triton-128x8x3", bench.Tiling(), sms=132)
        assert (tiled.block_p, tiled.num_warps, tiled.programs, tiled.unrolled) == (128, 8, 396, True)
        assert bench.tiling_of("triton-u8", bench.Tiling(), sms=132) is None
        if not torch.cuda.is_available():
            assert bench.main(["--folds", "1"]) == 2


def test_every_row_is_compared_with_its_models_peer_at_fold_1():
    rows = [{"model": "a", "fold": 1, "variant": "max-autotune", "images_per_s": 1000},
            {"model": "a", "fold": 4, "variant": "triton", "images_per_s": 2500},
            {"model": "b", "fold": 4, "variant": "triton", "images_per_s": 900},
            {"model": "b", "fold": 4, "variant": "max-autotune", "images_per_s": 800}]
    with bench_script("triton_kernels") as bench:
        bench.add_vs_peer(rows)
    assert [r["vs_peer"] for r in rows] == [1.0, 2.5, "", ""]  # b has no f = 1 peer: no ratio


@pytest.mark.slow
@pytest.mark.parametrize("dtype,models", [("float16", ["noscope-coral", "game-lol-gold-int"]),
                                          ("bfloat16", ["game-lol-gold-int"])])
def test_kernels_compile_for_sm90_without_a_gpu(dtype, models):
    root = Path(__file__).parents[1]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), env.get("PYTHONPATH", "")])
    script = root / "benchmarks" / "triton_sass.py"
    command = [sys.executable, str(script), "--dtype", dtype, "--folds", "4", "--models"]
    done = subprocess.run([*command, *models], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [dict(field.split("=") for field in line.split()) for line in done.stdout.splitlines() if "=" in line]
    features = [r for r in rows if r["kernel"] in ("unrolled", "generic")]
    assert len(features) == 4 * len(models) and any(r["kernel"].startswith("linear") for r in rows)
    for row in features:
        if row["kernel"] == "unrolled" and row["input"] == "folded":
            # the point of the specialised kernel: 16-byte vectors from the NHWC scratch, not 2-byte scalars
            assert int(row["async_16B"]) + int(row["loads_16B"]) > 0, row
