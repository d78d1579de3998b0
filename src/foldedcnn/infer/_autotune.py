"""backend="auto": time each candidate once per (model fingerprint, device, dtype, batch); cache the winner.

The winner is the fastest per batch, unless it compiles at every new batch bucket (torch.compile: seconds per
bucket on a CPU, tens of seconds with max-autotune on a GPU, in every process even with the persistent caches)
and is not COMPILE_MARGIN times faster than the fastest backend that does not compile.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch

from ..device import cache_dir, device_name, dtype_name, interleaved_median_seconds
from ..folded import FoldedModel
from ..fsio import atomic_write_text

CACHE_NAME = "engine-auto.json"
#: How much faster per batch a backend that compiles at each bucket must be to be chosen. A user's VGG on the
#: 2-core CPU: compile 2 % faster per batch than onnxruntime, and a `foldedcnn run` of vtest.avi spent 4.3 s of its
#: 4.8 s compiling the job's two buckets (166 frames/s in all, against 1,562 with onnxruntime).
COMPILE_MARGIN = 1.10


def fingerprint(model: FoldedModel) -> str:
    """Hash of what sets the speed of `model`: its architecture, fold and input size (not its weights)."""
    text = f"{model.fold}|{tuple(model.input_shape)}|{model.num_classes}|{model.network!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_key(model: FoldedModel, device: torch.device, dtype: torch.dtype, batch: int) -> str:
    """Key of a tuning result: fingerprint, device name and threads, dtype, batch in images."""
    where = device_name(device.type) + (f" x{torch.get_num_threads()} threads" if device.type == "cpu" else "")
    return f"{fingerprint(model)}|{where}|{dtype_name(dtype)}|{batch}"


def cache_file() -> Path:
    return cache_dir() / CACHE_NAME


def cached_choice(key: str) -> str | None:
    """The backend chosen earlier for `key` by today's rule (an entry made with another COMPILE_MARGIN, or
    before it, is chosen again), or None."""
    try:
        entry = json.loads(cache_file().read_text()).get(key, {})
    except (OSError, ValueError):
        return None
    return entry.get("backend") if entry.get("compile_margin") == COMPILE_MARGIN else None


def pick(seconds: dict[str, float], compiling: set[str]) -> str:
    """The backend auto chooses from median seconds per batch: the fastest, unless it is in `compiling` (compiles
    at each batch bucket) and not COMPILE_MARGIN times faster than the fastest backend outside `compiling`."""
    best = min(seconds, key=seconds.__getitem__)
    plain = [name for name in seconds if name not in compiling]
    if best in compiling and plain:
        fastest_plain = min(plain, key=seconds.__getitem__)
        if seconds[fastest_plain] < COMPILE_MARGIN * seconds[best]:
            return fastest_plain
    return best


def remember_choice(key: str, backend: str, seconds: dict[str, float]) -> None:
    """Record the winner and every candidate's median seconds per batch under `key`."""
    path = cache_file()
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    table[key] = {"backend": backend, "seconds": seconds, "compile_margin": COMPILE_MARGIN}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(table, indent=2, sort_keys=True))


def seconds_per_batch(runs: dict[str, Callable[[], object]], device: torch.device) -> dict[str, float]:
    """Auto-tuning's timing policy: per backend, median seconds of one call (`runs[name]()`), 2 warm-up and 5
    timed rounds with the backends interleaved (a cached choice must not hinge on a moment of load)."""
    return interleaved_median_seconds(runs, device, warmup=2, reps=5)
