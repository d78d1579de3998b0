"""Device probe: measured peak matmul FLOP/s and copy bandwidth, cached as JSON."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..errors import FoldedCNNError
from ..fsio import atomic_write_text

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class ProbeResult:
    """Measured peaks of one device at one dtype (medians over repetitions)."""

    device: str  # "cpu" | "cuda"
    device_name: str
    dtype: str
    peak_flops: float  # FLOP/s of a large square matmul
    bandwidth: float  # bytes/s of a large copy, read + write
    matmul_size: int
    copy_bytes: int
    torch_version: str
    threads: int
    measured_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def cache_dir() -> Path:
    """Where probe results live: $FOLDEDCNN_CACHE or ~/.cache/foldedcnn."""
    return Path(os.environ.get("FOLDEDCNN_CACHE", Path.home() / ".cache" / "foldedcnn"))


def cache_path(device: str, dtype: str) -> Path:
    return cache_dir() / f"probe-{device}-{dtype}.json"


def device_name(device: str) -> str:
    """Human name of the device: the GPU name, or the CPU model and core count."""
    if device == "cuda":
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


def median_seconds(run, device: str, warmup: int = 2, reps: int = 5) -> float:
    """Median wall time of `run()` over `reps` calls after `warmup` calls; synchronises on CUDA."""
    def once() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        run()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for _ in range(warmup):
        once()
    return statistics.median(once() for _ in range(reps))


def dtype_name(dtype: torch.dtype) -> str:
    """"float16" for torch.float16: the names DTYPES uses."""
    return str(dtype).removeprefix("torch.")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`device`, or CUDA when available else CPU; asking for an absent CUDA raises."""
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FoldedCNNError("device 'cuda' was asked for but no CUDA device is available; use device='cpu'")
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


def probe_device(device: str = "cpu", dtype: str = "float32", reps: int = 10,
                 matmul_size: int | None = None, copy_bytes: int | None = None) -> ProbeResult:
    """Measure peak matmul FLOP/s and copy bandwidth on `device` at `dtype`."""
    tdtype = resolve_dtype(dtype, resolve_device(device))
    n = matmul_size or (8192 if device == "cuda" else 2048)
    a = torch.randn(n, n, device=device).to(tdtype)
    b = torch.randn(n, n, device=device).to(tdtype)
    out = torch.empty(n, n, device=device, dtype=tdtype)
    t_mm = median_seconds(lambda: torch.mm(a, b, out=out), device, warmup=3, reps=reps)
    nbytes = copy_bytes or (1 << 30 if device == "cuda" else 1 << 28)
    src = torch.randn(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    t_copy = median_seconds(lambda: dst.copy_(src), device, warmup=3, reps=reps)
    return ProbeResult(
        device=device,
        device_name=device_name(device),
        dtype=dtype,
        peak_flops=2 * n**3 / t_mm,
        bandwidth=2 * src.numel() * 4 / t_copy,
        matmul_size=n,
        copy_bytes=src.numel() * 4,
        torch_version=torch.__version__,
        threads=torch.get_num_threads(),
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def save_probe(result: ProbeResult) -> Path:
    """Write the result to the cache and return its path."""
    path = cache_path(result.device, result.dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, result.to_json())
    return path


def load_probe(device: str = "cpu", dtype: str = "float32") -> ProbeResult | None:
    """The cached probe for (device, dtype), or None if none was run."""
    path = cache_path(device, dtype)
    if not path.exists():
        return None
    try:
        return ProbeResult(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise FoldedCNNError(f"probe cache {path} is unreadable ({exc}); rerun `foldedcnn probe`") from exc
