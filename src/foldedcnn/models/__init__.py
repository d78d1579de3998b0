"""The paper's model families: NoScope, game scraping, CIFAR ResNet-18."""

from . import game, noscope, resnet  # noqa: F401  (registers the zoo)
from ._registry import ModelSpec, create_model, get_spec, list_models, register_model
from .widths import (
    MIN_BLOCK,
    PAPER_WIDTHS,
    TENSOR_CORE_ALIGN,
    default_width_mult,
    resolve_align,
    resolve_min_block,
    scaled_width,
)

__all__ = [
    "MIN_BLOCK",
    "PAPER_WIDTHS",
    "TENSOR_CORE_ALIGN",
    "ModelSpec",
    "create_model",
    "default_width_mult",
    "get_spec",
    "list_models",
    "register_model",
    "resolve_align",
    "resolve_min_block",
    "scaled_width",
]
