"""Your own model: resolve "pkg.module:factory" or "path/to/nets.py:factory" to the function that builds it.

A *source* is what a checkpoint records to rebuild an unfolded original (B, C, H, W) -> (B, K):
{"zoo": name}, or {"factory": "pkg.module:function", "kwargs": {...}} (plus "search_path", the folder the
module was found in when it came from the working directory), or {"factory": "/abs/path/nets.py:function",
"kwargs": {...}} for a file. `load_factory` is the one place user code is imported; `ModelRef` is what a
command takes (`--model NAME` or `--module REF`) and builds at any fold. A source read from a file (a
checkpoint) is built only with `trust_code=True`: importing it runs code the file's author chose.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from ..errors import FoldedCNNError, UntrustedCodeError


def _split_ref(ref: str) -> tuple[str, str]:
    module, sep, attr = ref.rpartition(":")
    if not sep or not module or not attr:
        raise FoldedCNNError(f"expected 'pkg.module:function' or 'path/file.py:function', got {ref!r}")
    return module, attr


def _on_sys_path(folder: str) -> None:
    """Make `folder` importable, after everything already on sys.path (so it never shadows an installed module)."""
    if folder not in sys.path:
        sys.path.append(folder)


def _import_file(path: Path) -> ModuleType:
    """The module of Python file `path` (absolute), imported once under a name unique to the path; its folder
    becomes importable (for its sibling modules), as for `python path`."""
    if not path.is_file():
        raise FoldedCNNError(f"model file {path} does not exist")
    name = f"_foldedcnn_file_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    _on_sys_path(str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FoldedCNNError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise FoldedCNNError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _import_module(module: str, search_path: str | None) -> ModuleType:
    """Import `module`; when it is not found, retry with `search_path`, then the working directory (as
    `python -m` has it) importable."""
    for folder in (None, search_path, os.getcwd()):
        if folder is not None:
            _on_sys_path(folder)
            importlib.invalidate_caches()  # the folder's listing may predate the module
        try:
            return importlib.import_module(module)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if not (module == missing or module.startswith(missing + ".")):  # an import inside the module failed
                raise FoldedCNNError(f"importing {module} failed: {exc}") from exc
    where = f"sys.path, {search_path} or the working directory" if search_path else "sys.path or the working directory"
    raise FoldedCNNError(f"cannot import {module!r}: it is not on {where}; install it or run from the folder "
                         "that holds it")


def load_factory(factory: str, search_path: str | None = None) -> Callable[..., nn.Module]:
    """The function `factory` names: "pkg.module:function" (dots allowed after the colon) or "file.py:function".

    This imports (runs) user code.
    """
    module, attr = _split_ref(factory)
    try:
        mod = _import_file(Path(module)) if module.endswith(".py") else _import_module(module, search_path)
    except FoldedCNNError:
        raise
    except Exception as exc:  # the user's module raised while importing
        raise FoldedCNNError(f"importing {module} failed: {type(exc).__name__}: {exc}") from exc
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise FoldedCNNError(f"{module} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise FoldedCNNError(f"{factory} is not callable: it must return the unfolded model")
    return obj


def module_source(ref: str, kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The source to record for factory `ref` called with `kwargs`, valid from any working directory.

    A file path becomes absolute; a module found under the working directory records the folder it is
    importable from as "search_path". Imports the module (to check it).
    """
    module, attr = _split_ref(ref)
    kwargs = dict(kwargs or {})
    if module.endswith(".py"):
        path = Path(module).resolve()
        load_factory(f"{path}:{attr}")
        return {"factory": f"{path}:{attr}", "kwargs": kwargs}
    load_factory(ref)
    source: dict[str, Any] = {"factory": ref, "kwargs": kwargs}
    origin = getattr(sys.modules[module], "__file__", None)
    if origin:  # the folder the top-level package sits in; recorded when it is the user's own code
        path = Path(origin).resolve()
        root = path.parents[module.count(".") + (path.name == "__init__.py")]
        if root.is_relative_to(Path.cwd().resolve()):
            source["search_path"] = str(root)
    return source


def trusted(factory: str, trust_code: bool, what: str) -> str:
    """`factory` ("pkg.module:name" or "file.py:name") if the caller trusts code named by a file, else
    UntrustedCodeError."""
    if not trust_code:
        raise UntrustedCodeError(
            f"rebuilding this model would import module {factory.rpartition(':')[0]!r} and {what} {factory!r}, as "
            "the file says; pass trust_code=True (CLI: --trust-code) only if you trust whoever made the file")
    return factory


def build_source(source: Mapping[str, Any] | None, *, trust_code: bool = False) -> nn.Module:
    """The original (unfolded) model that `source` describes.

    {"zoo": name} builds a zoo model and imports nothing; {"factory": ..., "kwargs": ...} imports and calls
    that function (load_factory), which only `trust_code=True` allows (else UntrustedCodeError).
    """
    if isinstance(source, Mapping) and "zoo" in source:
        from ..models import create_model

        return create_model(source["zoo"], 1)
    if isinstance(source, Mapping) and "factory" in source:
        factory = trusted(source["factory"], trust_code, "call")
        model = load_factory(factory, source.get("search_path"))(**source.get("kwargs", {}))
        if not isinstance(model, nn.Module):
            raise FoldedCNNError(f"{source['factory']} returned {type(model).__name__}, not a torch.nn.Module")
        return model
    raise FoldedCNNError(
        "this folded model records no source to rebuild its original from: call "
        "fold_model(..., source={'factory': 'pkg.module:function', 'kwargs': {...}}) before saving"
    )


@dataclass(frozen=True)
class ModelRef:
    """A model to build at any fold: a zoo `name`, or a factory ("pkg.module:function" or
    "path/file.py:function") that returns the unfolded model (B, C, H, W) -> (B, K), called with `kwargs`;
    a factory's `input_shape` (C, H, W) is needed to trace it."""

    name: str
    input_shape: tuple[int, int, int] | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_zoo(self) -> bool:
        return ":" not in self.name

    @property
    def label(self) -> str:
        """The name in tables: the zoo name or the factory (with its kwargs)."""
        if not self.kwargs:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in sorted(self.kwargs.items()))})"

    def _key(self) -> tuple:
        return self.name, self.input_shape, json.dumps(self.kwargs, sort_keys=True, default=str)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelRef) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @cached_property
    def source(self) -> dict[str, Any]:
        """What a checkpoint records to rebuild the original."""
        return {"zoo": self.name} if self.is_zoo else module_source(self.name, self.kwargs)

    def check(self) -> ModelRef:
        """Self, after checking that the zoo knows the name, or that the factory imports and has an input shape."""
        if self.is_zoo:
            from ..models import get_spec

            get_spec(self.name)
        elif self.input_shape is None:
            raise FoldedCNNError(f"{self.name}: --input-shape C H W is required (one image's shape) for your model")
        else:
            _ = self.source
        return self

    def build(self, fold: int, width_mult: float | None = None, align: int | None = None, block_of: int = 1,
              min_block: int | None = None):
        """The FoldedModel at `fold` (widths: models.widths.scaled_width): the zoo's folded network, or the
        factory's model folded by fold_model. Its network maps (N, f*C, H, W) -> (N, f*K)."""
        from ..folded import FoldedModel

        self.check()
        if self.is_zoo:
            return FoldedModel.from_zoo(self.name, fold, width_mult, align, block_of=block_of, min_block=min_block)
        import torch

        from ._fold import fold_model

        model = build_source(self.source, trust_code=True)  # the user named this code, not a file
        return fold_model(model, fold, torch.zeros(1, *self.input_shape),
                          width_mult=width_mult, align=align, source=self.source, block_of=block_of,
                          min_block=min_block)
