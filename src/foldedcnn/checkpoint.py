"""Checkpoints: one safetensors file holding the weights and JSON metadata.

The metadata (under the safetensors header key "foldedcnn") says how to rebuild the model (a
zoo name or a fold plan), its fold, classes, input size, normalisation, and whatever training
wrote (config, metrics). Loading is safe by default:

- nothing is unpickled, and no module named by the file is imported unless the caller passes
  `trust_code=True` (needed only for a fold plan whose original comes from a `factory`);
- one SHA-256 covers the metadata and the weights, so an edit or a damaged byte is refused;
- the metadata is checked against a schema (_checkpoint_schema) and against the tensors before
  the model is built.

Version 1 files (written before the metadata was hashed) still load: their weights are checked,
their metadata goes through the same schema and trust checks; re-save one with
`save_checkpoint(path, load_checkpoint(path).model, extra=...)` to hash its metadata too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ._checkpoint_schema import metadata_problem
from .device import resolve_device
from .errors import FoldedCNNError, UntrustedCodeError
from .folded import FoldedModel
from .fsio import atomic_path

FORMAT = "foldedcnn-checkpoint"
VERSION = 2  # 2: the SHA-256 covers the metadata as well as the weights
READABLE_VERSIONS = (1, 2)


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

    @property
    def name(self) -> str:
        """A short name for the model this checkpoint holds (see checkpoint_name)."""
        return checkpoint_name(self.meta)


_FOLDER_SPECS = ("npz", "folder")  # data specs named after their folder


def checkpoint_name(meta: dict[str, Any]) -> str:
    """<data>-<model>-f<fold> from the checkpoint's metadata, e.g. "vtest-noscope-coral-f4".

    <data> is the name of the data spec training recorded (the folder's name for npz:DIR and folder:DIR)
    and is left out when absent or when the model is named after it ("game-lol-gold-int-f4"). <model>
    is the zoo name, else the model training named, else the factory function of a fold_model source.
    Characters other than letters, digits, '.', '_' and '-' become '-', so the name is a valid file
    name and Triton model name.
    """
    arch, training = meta["architecture"], meta.get("training") or {}
    if arch.get("kind") == "zoo":
        model = arch["name"]
    else:
        source = arch.get("source") or {}
        model = training.get("model") or source.get("zoo") or str(source.get("factory", "model")).rpartition(":")[2]
    kind, _, path = str(training.get("data", "")).partition("?")[0].partition(":")
    data = Path(path).name if kind in _FOLDER_SPECS and path else kind
    parts = [model] if not data or model.startswith(data) else [data, model]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join([*parts, f"f{meta['fold']}"])).strip("-")


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of `tensors`, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def checkpoint_digest(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> str:
    """SHA-256 over `meta` (canonical JSON, without its "sha256" field) and tensors_digest(tensors)."""
    body = {k: v for k, v in meta.items() if k != "sha256"}
    h = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    h.update(tensors_digest(tensors).encode())
    return h.hexdigest()


def non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or infinity."""
    return [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def layer_widths(network: torch.nn.Module) -> list[int]:
    """Output channels / features of every Conv2d and Linear of `network`, in module order."""
    return [m.out_channels if isinstance(m, torch.nn.Conv2d) else m.out_features
            for m in network.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


def metadata_error(meta: dict[str, Any]) -> str | None:
    """None when `meta` fits the schema and its fields agree with each other, else what is wrong."""
    problem = metadata_problem(meta)
    if problem is not None:
        return problem
    if len(meta["class_names"]) != meta["num_classes"]:
        return f"{len(meta['class_names'])} class names for {meta['num_classes']} classes"
    channels, norm = meta["input_shape"][0], meta["normalization"]
    if not len(norm["mean"]) == len(norm["std"]) == channels:
        return f"normalization needs {channels} means and stds (one per input channel)"
    if "calibration" in meta and meta["calibration"]["low"] > meta["calibration"]["high"]:
        return "calibration low threshold above the high one"
    return None


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
        return {"kind": "zoo", "name": ident.zoo, "width_mult": ident.width_mult, "align": ident.align,
                "block_of": ident.block_of, "min_block": ident.min_block, "num_classes": ident.num_classes}
    raise CheckpointError(
        "cannot record how to rebuild this model: use a zoo model (create_model / FoldedModel.from_zoo) or fold_model()"
    )


def rebuild(architecture: dict[str, Any], fold: int, *, trust_code: bool = False) -> FoldedModel:
    """An untrained FoldedModel with the recorded architecture (already checked against the schema).

    A zoo model or a fold plan of a zoo model imports nothing; a plan whose original comes from a
    `factory` (or names leaf modules) imports them only with `trust_code=True`, else UntrustedCodeError.
    """
    if architecture["kind"] == "zoo":
        return FoldedModel.from_zoo(architecture["name"], fold, architecture.get("width_mult"),
                                    architecture.get("align", 1), architecture.get("num_classes"),
                                    architecture.get("block_of", 1), architecture.get("min_block", 0))
    from .transform import rebuild_from_architecture

    return rebuild_from_architecture(architecture, trust_code=trust_code)


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
    channel; `class_names` name the classes. Both default to the model's identity (set by training), else to
    identity.DEFAULT_MEAN / DEFAULT_STD on every input channel and "0".."K-1". `extra` (training config,
    metrics, ...) is stored as given; it must be JSON. A model that could not be rebuilt at load time raises
    CheckpointError.
    """
    path = Path(path)
    ident = model.identity
    architecture = architecture_of(model)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.network.state_dict().items()}
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": architecture,
        "fold": model.fold,
        "num_classes": model.num_classes,
        "input_shape": list(model.input_shape),
        "class_names": list(class_names) if class_names else ident.resolved_class_names,
        "normalization": dict(normalization) if normalization else ident.resolved_normalization,
        "widths": layer_widths(model.network),
        **(extra or {}),
    }
    meta = json.loads(json.dumps(meta))  # exactly what a reader will parse (tuples become lists)
    meta["sha256"] = checkpoint_digest(tensors, meta)
    problem = metadata_error(meta)
    if problem is not None:
        raise CheckpointError(f"refusing to save {path}: invalid metadata ({problem})")
    if non_finite(tensors):
        raise CheckpointError(f"refusing to save {path}: the model has NaN or infinite weights "
                              f"({', '.join(non_finite(tensors)[:3])}); training diverged: lower the learning rate")
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
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") not in READABLE_VERSIONS:
        found = f"{meta.get('format')!r} v{meta.get('version')}" if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path} has format {found}, expected {FORMAT!r} v{VERSION} (or v1)")
    problem = metadata_error(meta)
    if problem is not None:
        raise CheckpointError(f"{path} has invalid metadata ({problem}); it was edited or damaged after saving: "
                              "use the file training wrote, or re-save the model with save_checkpoint")
    return meta


def _verified_tensors(path: Path, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, after checking them (and for version 2 the metadata) against its SHA-256 and
    refusing NaN or infinite weights."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise CheckpointError(f"{path} is truncated or damaged ({exc})") from exc
    digest = checkpoint_digest(tensors, meta) if meta["version"] >= 2 else tensors_digest(tensors)
    if digest != meta["sha256"]:
        raise CheckpointError(f"{path} failed its SHA-256 check: the weights or metadata were modified after "
                              "saving; use the file training wrote")
    if non_finite(tensors):
        raise CheckpointError(f"{path} holds NaN or infinite weights ({', '.join(non_finite(tensors)[:3])}): the "
                              "training that wrote it diverged; retrain with a lower learning rate")
    return tensors


# written by save_checkpoint from the model itself; update_metadata may not change them
_MODEL_KEYS = frozenset({"format", "version", "architecture", "fold", "num_classes", "input_shape", "class_names",
                         "normalization", "widths", "sha256"})


def update_metadata(path: str | os.PathLike, entries: dict[str, Any]) -> dict[str, Any]:
    """Add or replace JSON `entries` (e.g. {"calibration": {...}}) in checkpoint `path`'s metadata.

    The file is verified (SHA-256, schema) and its weights written back unchanged with the new metadata
    and a new SHA-256 over both, to a temporary file renamed over `path` (a reader sees the old
    checkpoint or the new one, never a part). A version 1 file comes back as version 2. Keys describing
    the model itself (architecture, fold, classes, sha256, ...) are refused. Returns the new metadata.
    """
    path = Path(path)
    refused = sorted(_MODEL_KEYS & set(entries))
    if refused:
        raise CheckpointError(f"update_metadata cannot change {', '.join(refused)}: they describe the weights; "
                              "save a new checkpoint with save_checkpoint instead")
    meta = read_metadata(path)
    tensors = _verified_tensors(path, meta)
    meta = json.loads(json.dumps({**meta, **entries, "version": VERSION}))  # refuses what JSON cannot hold
    meta["sha256"] = checkpoint_digest(tensors, meta)
    problem = metadata_error(meta)
    if problem is not None:
        raise CheckpointError(f"refusing to update {path}: invalid metadata ({problem})")
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"foldedcnn": json.dumps(meta)})
    return meta


def load_checkpoint(
    path: str | os.PathLike,
    *,
    fold: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
    device: str | torch.device = "cpu",
    trust_code: bool = False,
) -> Checkpoint:
    """Rebuild the model of checkpoint `path` and load its weights (eval mode).

    `fold` and `input_shape`, when given, must match the checkpoint's, else CheckpointError. The
    metadata and weights must pass the SHA-256 check and the schema before anything is built.
    `trust_code=True` allows importing and calling the `factory` a fold plan's source names (code
    chosen by whoever wrote the file); without it such a checkpoint raises UntrustedCodeError.
    """
    path = Path(path)
    device = resolve_device(device)
    meta = read_metadata(path)
    if fold is not None and fold != meta["fold"]:
        raise CheckpointError(f"{path} holds a fold={meta['fold']} model, but fold={fold} was asked for")
    if input_shape is not None and tuple(input_shape) != tuple(meta["input_shape"]):
        raise CheckpointError(f"{path} expects input {tuple(meta['input_shape'])}, not {tuple(input_shape)}")
    tensors = _verified_tensors(path, meta)
    try:
        model = rebuild(meta["architecture"], meta["fold"], trust_code=trust_code)
    except UntrustedCodeError as exc:
        raise UntrustedCodeError(f"{path}: {exc}") from None
    try:
        model.network.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the recorded architecture ({exc})") from exc
    if (model.fold, model.num_classes, model.input_shape) != (meta["fold"], meta["num_classes"],
                                                              tuple(meta["input_shape"])):
        raise CheckpointError(f"{path}: metadata (fold, classes, input size) does not match the model it "
                              "rebuilds; the file was edited after saving")
    if "widths" in meta and meta["widths"] != layer_widths(model.network):
        raise CheckpointError(f"{path}: metadata widths {meta['widths']} do not match the model's "
                              f"{layer_widths(model.network)}; the file was edited after saving")
    model.identity = model.identity.trained(meta["normalization"], meta["class_names"])
    return Checkpoint(model.to(device).eval(), meta)
