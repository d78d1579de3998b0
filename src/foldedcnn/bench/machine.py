"""Which machine a benchmark ran on: CPU model and cores or GPU name, library versions."""

from __future__ import annotations

import os
import platform
import re
from typing import Any

import torch

from ..device import device_name


def machine_info(device: str) -> dict[str, Any]:
    """CPU model and cores, GPU name (or None), torch threads and torch / onnxruntime / python versions."""
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {
        "device": device,
        "device_name": device_name(device),
        "cpu": device_name("cpu"),
        "cpu_cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "onnxruntime": ort_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def machine_slug(info: dict[str, Any]) -> str:
    """Short directory name: "cpu-2core" or the GPU name, e.g. "nvidia-h100-80gb-hbm3"."""
    if info["device"] == "cuda" and info["gpu"]:
        return re.sub(r"[^a-z0-9]+", "-", info["gpu"].lower()).strip("-")
    return f"cpu-{info['cpu_cores']}core"
