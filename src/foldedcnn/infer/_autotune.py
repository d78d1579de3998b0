"""backend="auto": time each candidate once per (model fingerprint, device, dtype, batch); cache the winner."""

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
    """The backend chosen earlier for `key`, or None."""
    try:
        return json.loads(cache_file().read_text()).get(key, {}).get("backend")
    except (OSError, ValueError):
        return None


def remember_choice(key: str, backend: str, seconds: dict[str, float]) -> None:
    """Record the winner and every candidate's median seconds per batch under `key`."""
    path = cache_file()
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    table[key] = {"backend": backend, "seconds": seconds}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(table, indent=2, sort_keys=True))


def seconds_per_batch(runs: dict[str, Callable[[], object]], device: torch.device) -> dict[str, float]:
    """Auto-tuning's timing policy: per backend, median seconds of one call (`runs[name]()`), 2 warm-up and 5
    timed rounds with the backends interleaved (a cached choice must not hinge on a moment of load)."""
    return interleaved_median_seconds(runs, device, warmup=2, reps=5)
