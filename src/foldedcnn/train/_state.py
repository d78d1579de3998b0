"""Resumable training state: tensors in safetensors, everything else JSON, written atomically.

`last.safetensors` holds the model, the optimizer's per-parameter tensors, the RNG state and JSON
metadata (config, completed epochs, curriculum, metrics history, optimizer hyper-parameters).
Nothing is pickled. The file is the commit point of an epoch: it is replaced only once complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..checkpoint import CheckpointError, tensors_digest
from ..fsio import atomic_path

STATE_FORMAT = "foldedcnn-train-state"
STATE_VERSION = 1


@dataclass
class TrainState:
    """What a resumed run needs: tensors (model.*, optim.*, rng.*) and JSON `meta`."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split optimizer.state_dict() into flat tensors ("optim.<param>.<key>") and JSON (the rest)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Inverse of optimizer_tensors: restore `optimizer` in place."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, entry in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(entry)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_state(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write a training state atomically (temp file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    full = {"format": STATE_FORMAT, "version": STATE_VERSION, "sha256": tensors_digest(tensors), **meta}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"foldedcnn": json.dumps(full)})
    return path


def load_state(path: str | os.PathLike) -> TrainState:
    """Read a training state written by save_state; a damaged file raises CheckpointError."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {})["foldedcnn"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors, KeyError and JSON errors all mean "not a usable state"
        raise CheckpointError(f"{path} is not a readable training state ({exc})") from exc
    if meta.get("format") != STATE_FORMAT or meta.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path} is not a {STATE_FORMAT} v{STATE_VERSION} file")
    if tensors_digest(tensors) != meta["sha256"]:
        raise CheckpointError(f"{path} failed its SHA-256 check")
    return TrainState(tensors, meta)
