"""Lazy re-exports: a package names its public API without importing the heavy modules behind it."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` that imports `name` from submodule `exports[name]` of `package` on first use."""

    def __getattr__(name: str) -> object:
        if name in exports:
            return getattr(importlib.import_module(f".{exports[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def lazy_exports(package: str, exports: dict[str, str], extra: tuple[str, ...] = ()) -> tuple[
        list[str], Callable[[str], object], Callable[[], list[str]]]:
    """`__all__`, `__getattr__` and `__dir__` of a package whose public names `exports` are imported lazily
    (`extra`: names the package defines itself, e.g. "__version__")."""
    names = [*sorted(exports), *extra]
    return names, lazy_getattr(package, exports), lambda: names
