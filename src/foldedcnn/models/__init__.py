"""The paper's model families: NoScope, game scraping, CIFAR ResNet-18."""

from . import game, noscope, resnet  # noqa: F401  (registers the zoo)
from ._registry import ModelSpec, create_model, get_spec, list_models, register_model
from .widths import default_width_mult, scaled_width

__all__ = [
    "ModelSpec",
    "create_model",
    "default_width_mult",
    "get_spec",
    "list_models",
    "register_model",
    "scaled_width",
]
