"""Peak probe: measured peak matmul FLOP/s and copy bandwidth of a device, cached as JSON under cache_dir()."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..device import cache_dir, device_name, median_seconds, resolve_device, resolve_dtype
from ..errors import FoldedCNNError
from ..fsio import atomic_write_text


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


def cache_path(device: str, dtype: str) -> Path:
    return cache_dir() / f"probe-{device}-{dtype}.json"


#: The probe's matmul grows (doubling from 256) until one call takes this long or reaches its full size, so a
#: dtype a device only emulates (float16 on most CPUs: ~1,000x slower than float32) is probed in seconds, not hours.
CALL_S = 0.05


def _sized_matmul(device: str, tdtype: torch.dtype, largest: int) -> int:
    """The matmul size to probe with: `largest`, or the first of 256, 512, ... whose one call takes CALL_S."""
    n = min(256, largest)
    while n < largest:
        a = torch.randn(n, n, device=device).to(tdtype)
        if median_seconds(lambda a=a: torch.mm(a, a), device, warmup=1, reps=1) >= CALL_S:
            return n
        n = min(2 * n, largest)
    return n


def probe_device(device: str = "cpu", dtype: str = "float32", reps: int = 10,
                 matmul_size: int | None = None, copy_bytes: int | None = None) -> ProbeResult:
    """Measure peak matmul FLOP/s and copy bandwidth on `device` at `dtype`. The matmul is square, of
    `matmul_size`, or by default as large as 8192 (CUDA) / 2048 (CPU) allows within CALL_S per call."""
    tdtype = resolve_dtype(dtype, resolve_device(device))
    n = matmul_size or _sized_matmul(device, tdtype, 8192 if device == "cuda" else 2048)
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
