"""Persistent torch.compile caches under foldedcnn's cache dir, and recovery from a damaged one.

PyTorch's own on-disk caches (inductor's FX graph cache, the AOTAutograd cache, the autotuning
results of max-autotune and the generated Triton / C++ kernels) live in $TORCHINDUCTOR_CACHE_DIR.
foldedcnn points it at `cache_dir()/torch-compile`, so a second process finds every compiled
graph and autotuning choice and starts in seconds instead of recompiling (20-30 s per model and
fold with max-autotune on a GPU). A directory the user set before importing foldedcnn is kept.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ...device import cache_dir

ENV = "TORCHINDUCTOR_CACHE_DIR"
SUBDIR = "torch-compile"
_USER_DIR = os.environ.get(ENV)  # the user's choice, if any, wins over foldedcnn's cache dir

T = TypeVar("T")


def use_compile_cache() -> Path:
    """Point PyTorch's compile caches at foldedcnn's cache dir (unless the user chose one); the dir in use."""
    if _USER_DIR is None:
        os.environ[ENV] = str(cache_dir() / SUBDIR)
    return Path(os.environ[ENV])


def compile_or_recover(first_call: Callable[[], T], cache: Path) -> T:
    """`first_call()` (a compiled function's first call at a shape); if compiling fails, as a damaged cache
    entry makes it fail, warn, empty `cache` and compile once more from scratch (a second failure raises)."""
    import torch._dynamo.exc  # here, not at import: torch._dynamo costs every process ~1.5 s to import

    try:
        return first_call()
    except torch._dynamo.exc.BackendCompilerFailed as exc:
        if not cache.is_dir():
            raise
        cause = getattr(exc, "inner_exception", None) or exc
        why = f"{type(cause).__name__}: {cause}"[:200]
        warnings.warn(f"torch.compile failed with the cache in {cache} ({why}); the cache may be damaged: "
                      "emptying it and recompiling", RuntimeWarning, stacklevel=3)
        shutil.rmtree(cache, ignore_errors=True)
        return first_call()
