"""foldedcnn: fold small specialized CNNs so they run at higher throughput (Kosaian et al., ICML 2021).

The public API is imported lazily so that `import foldedcnn` stays light.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "fold_images": "layout",
    "unfold_images": "layout",
    "unfold_logits": "layout",
    "log_softmax_per_image": "layout",
    "pad_to_multiple": "layout",
    "valid_mask": "layout",
    "Folded": "layout",
    "create_model": "models",
    "list_models": "models",
    "register_model": "models",
    "ModelSpec": "models",
    "analyze_model": "analysis",
    "analyze_zoo_model": "analysis",
    "roofline_bound": "analysis",
    "Engine": "infer",
    "FoldedModel": "folded",
    "ModelIdentity": "identity",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "FoldedCNNError": "errors",
    "FoldError": "errors",
    "ShapeError": "errors",
    "UnknownModelError": "errors",
    "UnsupportedOpError": "errors",
    "fold_model": "transform",
    "register_rule": "transform",
    "FoldPlan": "transform",
    "block_diagonal_fold": "transform",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, ("__version__",))
