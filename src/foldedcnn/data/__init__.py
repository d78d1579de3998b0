"""Data that works offline: generated game HUDs, NoScope-style video tasks, Fashion-MNIST, CIFAR, folders.

`load_data(spec, split, seed=)` returns a LabelledImages (uint8 (N, 3, H, W), int64 labels); see
spec.py for the spec strings. `FoldBatcher` / `fold_mixing_order` order images so that the f
images of a fold are unrelated. Names are imported lazily.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "LabelledImages": "types",
    "DataError": "types",
    "check_class_names": "types",
    "DataSpec": "spec",
    "parse_spec": "spec",
    "load_data": "spec",
    "is_generated": "spec",
    "fold_mixing_order": "folding",
    "FoldBatcher": "folding",
    "FoldBatch": "folding",
    "vtest_path": "vtest",
    "prepare_vtest": "vtest",
    "VTEST_ROI": "vtest",
    "VTEST_SIZE": "vtest",
    "generate_game": "game",
    "render_text": "game",
    "classify_text": "game_labels",
    "class_names": "game_labels",
    "build_video_task": "noscope",
    "save_video_task": "noscope",
    "load_split": "store",
    "save_split": "store",
    "read_idx": "idx",
    "load_fashion_mnist": "idx",
    "load_cifar": "cifar",
    "load_folder": "folder",
    "export_folder": "folder",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
