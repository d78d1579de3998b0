"""FLOPs, params, arithmetic intensity, roofline, device probe, compound-scaling baseline."""

from .flops import LayerStats, count_params, layer_stats, torch_counted_flops
from .intensity import ModelAnalysis, analyze_model, analyze_zoo_model, intensity_at, intensity_limit
from .roofline import RooflineBound, ridge_point, roofline_bound

__all__ = [
    "LayerStats",
    "ModelAnalysis",
    "RooflineBound",
    "analyze_model",
    "analyze_zoo_model",
    "count_params",
    "intensity_at",
    "intensity_limit",
    "layer_stats",
    "ridge_point",
    "roofline_bound",
    "torch_counted_flops",
]
