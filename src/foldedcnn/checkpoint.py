"""Checkpoints: one safetensors file holding the weights and JSON metadata.

The metadata (under the safetensors header key "foldedcnn") says how to rebuild the model (a
zoo name or a fold plan), its fold, classes, input size, normalisation, and whatever training
wrote (config, metrics). A SHA-256 over the tensors catches tampering; nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .errors import FoldedCNNError
from .folded import FoldedModel
from .fsio import atomic_path

FORMAT = "foldedcnn-checkpoint"
VERSION = 1


class CheckpointError(FoldedCNNError):
    """A checkpoint that is missing, truncated, tampered with, or not the one asked for."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (eval mode; its identity carries the normalisation and class
    names) and its metadata."""

    model: FoldedModel
    meta: dict[str, Any]

    @property
    def class_names(self) -> list[str]:
        return list(self.meta["class_names"])

    @property
    def normalization(self) -> dict[str, list[float]]:
        return dict(self.meta["normalization"])


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of `tensors`, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def architecture_of(model: FoldedModel) -> dict[str, Any]:
    """How to rebuild `model`, from its identity: {"kind": "zoo", ...} or {"kind": "plan", ...}.

    Raises CheckpointError, naming the fix, for a model that could not be rebuilt at load time.
    """
    ident = model.identity
    if ident.plan is not None:
        if ident.source is None:
            raise CheckpointError(
                "this fold_model model records no source to rebuild its original from, so a checkpoint of it could "
                "not be loaded: fold it with fold_model(..., source={'factory': 'pkg.module:function', "
                "'kwargs': {...}}) (or source={'zoo': name}) before saving")
        return {"kind": "plan", "plan": ident.plan.to_dict(), "source": dict(ident.source)}
    if ident.zoo is not None:
        return {"kind": "zoo", "name": ident.zoo, "width_mult": ident.width_mult, "align": ident.align}
    raise CheckpointError(
        "cannot record how to rebuild this model: use a zoo model (create_model / FoldedModel.from_zoo) or fold_model()"
    )


def rebuild(architecture: dict[str, Any], fold: int) -> FoldedModel:
    """An untrained FoldedModel with the recorded architecture."""
    kind = architecture.get("kind")
    if kind == "zoo":
        return FoldedModel.from_zoo(architecture["name"], fold, architecture.get("width_mult"),
                                    architecture.get("align", 1))
    if kind == "plan":
        from .transform import rebuild_from_architecture

        return rebuild_from_architecture(architecture)
    raise CheckpointError(f"unknown architecture kind {kind!r} in checkpoint metadata")


def save_checkpoint(
    path: str | os.PathLike,
    model: FoldedModel,
    *,
    class_names: list[str] | None = None,
    normalization: dict[str, list[float]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `model` and its metadata to `path` (a .safetensors file), atomically.

    `normalization` maps images scaled to [0, 1] to the network's input: (x - mean) / std per
    channel; `class_names` name the classes. Both default to the model's identity (set by training),
    else to DEFAULT_NORMALIZATION and "0".."K-1". `extra` (training config, metrics, ...) is stored
    as given; it must be JSON. A model that could not be rebuilt at load time raises CheckpointError.
    """
    path = Path(path)
    ident = model.identity
    architecture = architecture_of(model)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.network.state_dict().items()}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": architecture,
        "fold": model.fold,
        "num_classes": model.num_classes,
        "input_shape": list(model.input_shape),
        "class_names": list(class_names) if class_names else ident.resolved_class_names,
        "normalization": dict(normalization) if normalization else ident.resolved_normalization,
        "widths": [m.out_channels if isinstance(m, torch.nn.Conv2d) else m.out_features
                   for m in model.network.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))],
        "sha256": tensors_digest(tensors),
        **(extra or {}),
    }
    if len(meta["class_names"]) != model.num_classes:
        raise CheckpointError(f"{len(meta['class_names'])} class names for a {model.num_classes}-class model")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"foldedcnn": json.dumps(meta)})
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's metadata, without loading its tensors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("foldedcnn")
    except Exception as exc:  # safetensors raises several types for a damaged header
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({exc})") from exc
    if raw is None:
        raise CheckpointError(f"{path} is a safetensors file without foldedcnn metadata")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} has damaged metadata ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has format {meta.get('format')!r} v{meta.get('version')}, "
                              f"expected {FORMAT!r} v{VERSION}")
    return meta


def load_checkpoint(
    path: str | os.PathLike,
    *,
    fold: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
    device: str | torch.device = "cpu",
) -> Checkpoint:
    """Rebuild the model of checkpoint `path` and load its weights (eval mode).

    `fold` and `input_shape`, when given, must match the checkpoint's, else CheckpointError.
    """
    path = Path(path)
    meta = read_metadata(path)
    if fold is not None and fold != meta["fold"]:
        raise CheckpointError(f"{path} holds a fold={meta['fold']} model, but fold={fold} was asked for")
    if input_shape is not None and tuple(input_shape) != tuple(meta["input_shape"]):
        raise CheckpointError(f"{path} expects input {tuple(meta['input_shape'])}, not {tuple(input_shape)}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise CheckpointError(f"{path} is truncated or damaged ({exc})") from exc
    if tensors_digest(tensors) != meta["sha256"]:
        raise CheckpointError(f"{path} failed its SHA-256 check: the weights were modified after saving")
    model = rebuild(meta["architecture"], meta["fold"])
    try:
        model.network.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the recorded architecture ({exc})") from exc
    if (model.fold, model.num_classes, model.input_shape) != (meta["fold"], meta["num_classes"],
                                                              tuple(meta["input_shape"])):
        raise CheckpointError(f"{path}: metadata (fold, classes, input size) does not match the model it "
                              "rebuilds; the file was edited after saving")
    if len(meta["class_names"]) != model.num_classes:
        raise CheckpointError(f"{path}: {len(meta['class_names'])} class names for {model.num_classes} classes")
    model.identity = model.identity.trained(meta["normalization"], meta["class_names"])
    return Checkpoint(model.to(device).eval(), meta)
