"""Devices and dtypes: resolution, names, sizes, a median timer and foldedcnn's cache folder.

The ground floor every layer may use: the engine, the benchmark, the probe and training all
resolve `device=None` / `dtype=None` the same way here.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .errors import FoldedCNNError

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
CACHE_ENV = "FOLDEDCNN_CACHE"


def cache_dir() -> Path:
    """foldedcnn's one cache folder (probes, engine choices, offline data): $FOLDEDCNN_CACHE or ~/.cache/foldedcnn."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "foldedcnn")


def device_name(device: str | torch.device) -> str:
    """Human name of the device: the GPU name, or the CPU model and core count."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(0)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} logical cores)"


def fast_layout(module: torch.nn.Module, device: str | torch.device) -> torch.nn.Module:
    """`module`, moved in place like Module.to, with its 4-D weights in the memory layout its convolutions run
    fastest in on `device`: channels_last on the CPU, as they are elsewhere. The values are unchanged; a layer's
    output follows its weight's layout, so a folded input (B/f, f*C, H, W) needs no conversion.

    On one thread of this project's 2-core AMD EPYC (torch 2.13, oneDNN), channels_last runs gold-int's
    predict_logits 1.85-2.0x and its training epochs 1.4-1.6x faster (convolutions and max-pooling both;
    benchmarks/results/cpu-2core/train_layout.md). Not measured on GPUs, so there nothing changes."""
    if torch.device(device).type == "cpu":
        module.to(memory_format=torch.channels_last)
    return module


def median_seconds(run: Callable[[], object], device: str | torch.device, warmup: int = 2, reps: int = 5) -> float:
    """Median wall time of `run()` over `reps` calls after `warmup` calls; synchronises on CUDA."""
    return interleaved_median_seconds({"run": run}, device, warmup, reps)["run"]


def interleaved_median_seconds(runs: dict[str, Callable[[], object]], device: str | torch.device, warmup: int = 2,
                               reps: int = 5) -> dict[str, float]:
    """Median wall time per entry of `runs`, timed in rounds (one call of each per round, `reps` rounds after
    `warmup`), so a burst of load from elsewhere hits every candidate alike instead of the one timed then;
    synchronises on CUDA."""
    cuda = torch.device(device).type == "cuda"

    def once(run: Callable[[], object]) -> float:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_no in range(warmup + reps):
        for name, run in runs.items():
            seconds = once(run)
            if round_no >= warmup:
                times[name].append(seconds)
    return {name: statistics.median(t) for name, t in times.items()}


def dtype_name(dtype: torch.dtype) -> str:
    """"float16" for torch.float16: the names DTYPES uses."""
    return str(dtype).removeprefix("torch.")


def bytes_per_element(dtype: str | torch.dtype) -> int:
    """2 for float16/bfloat16, 4 for float32."""
    return (DTYPES[dtype] if isinstance(dtype, str) else dtype).itemsize


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`device`, or CUDA when available else CPU; asking for an absent CUDA raises."""
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FoldedCNNError("device 'cuda' was asked for but no CUDA device is available; use --device cpu "
                             "(device='cpu' in Python)")
    if dev.type not in ("cpu", "cuda"):
        raise FoldedCNNError(f"unsupported device {str(dev)!r}; use 'cpu' or 'cuda'")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """`dtype` (name or torch dtype), or float16 on CUDA and float32 on CPU."""
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise FoldedCNNError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
        return DTYPES[dtype]
    if dtype not in DTYPES.values():
        raise FoldedCNNError(f"unsupported dtype {dtype}; choose one of {', '.join(DTYPES)}")
    return dtype
