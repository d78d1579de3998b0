"""The onnxruntime backend's graph, kept on disk: exporting a model takes seconds (torch.export, then ONNX),
reading a kept one milliseconds, so a second process (a `foldedcnn run`, a Ray actor) starts at once.

Files live in cache_dir()/onnx, named by a SHA-256 of everything the graph depends on: the network's modules as
printed and the code of their classes (a traced network's generated forward), so an edited forward() makes
another graph, its fold and input shape, every weight and buffer, and the torch and onnx versions.
Other weights or versions make another file; the least recently used beyond KEEP_BYTES in all are removed. A file that
ONNX Runtime cannot load (damaged) is removed and the model exported again, with a warning.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from ...device import cache_dir
from ...folded import FoldedModel
from ...fsio import atomic_path

SUBDIR = "onnx"
KEEP_BYTES = 1 << 30  # graphs kept, most recently used first (a NoScope model's is 5-20 MB, a folded ResNet-18's
# up to 180 MB); the newest is kept whatever its size
FORMAT = 1  # bump when the exported graph changes for the same model and versions

T = TypeVar("T")


def graph_key(model: FoldedModel) -> str:
    """Hex SHA-256 of what the exported graph depends on (see the module docstring)."""
    import onnx

    h = hashlib.sha256()
    h.update(f"{FORMAT}|{torch.__version__}|{onnx.__version__}|{model.fold}|{tuple(model.input_shape)}|"
             f"{model.num_classes}|{model.training}|{model.network!r}".encode())
    h.update(_code(model.network))
    for name, tensor in model.network.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"|{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _code(network: torch.nn.Module) -> bytes:
    """The code that runs `network`: the compiled methods of each module class outside torch (torch's own are
    fixed by its version) and, for a traced network (fold_model's), the generated forward."""
    import torch.fx

    classes = {c for m in network.modules() for c in type(m).__mro__
               if not c.__module__.startswith(("torch.", "builtins"))}
    parts = []
    for cls in sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
        parts.append(f"{cls.__module__}.{cls.__qualname__}".encode())
        for name, attr in sorted(vars(cls).items()):
            code = getattr(getattr(attr, "__func__", attr), "__code__", None)
            if code is not None:
                parts += [name.encode(), marshal.dumps(code)]
    parts += [m.code.encode() for m in network.modules() if isinstance(m, torch.fx.GraphModule)]
    return b"|".join(parts)


def cached_graph(model: FoldedModel, export: Callable[[FoldedModel], bytes], load: Callable[[bytes], T]) -> T:
    """`load(graph)` for `model`'s exported graph: the kept file when there is one, else `export(model)`, kept
    for next time (a cache folder that cannot be written only costs the next process the export)."""
    path = cache_dir() / SUBDIR / f"{graph_key(model)}.onnx"
    try:
        graph = path.read_bytes()
    except OSError:
        graph = None
    if graph is not None:
        try:
            result = load(graph)
        except Exception as exc:  # ONNX Runtime's errors have no common base we can name
            warnings.warn(f"ONNX Runtime could not load the kept graph {path} ({type(exc).__name__}: "
                          f"{str(exc)[:160]}); removing it and exporting the model again", RuntimeWarning,
                          stacklevel=3)
            path.unlink(missing_ok=True)
        else:
            os.utime(path)  # recently used
            return result
    graph = export(model)
    result = load(graph)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(graph)
        _prune(path.parent)
    except OSError:
        pass
    return result


def _prune(folder: Path) -> None:
    """Remove the least recently used graphs beyond KEEP_BYTES in all (never the newest)."""
    files = sorted(((st.st_mtime, st.st_size, p) for p in folder.glob("*.onnx") for st in (p.stat(),)), reverse=True)
    total = 0
    for i, (_, size, path) in enumerate(files):
        total += size
        if i and total > KEEP_BYTES:
            path.unlink(missing_ok=True)
