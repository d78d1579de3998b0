"""The JSON schema of checkpoint metadata, checked before anything is built from it.

Types and ranges only (a positive fold, three positive input sizes, std > 0, finite numbers, a
source that is a zoo name or a "module:function" string); checks across fields (class names vs
classes, normalisation vs channels, widths vs tensors) are made in checkpoint.py.
"""

from __future__ import annotations

import math
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match


def _finite(validator, wanted: bool, instance: Any, schema: dict) -> Any:
    if wanted and isinstance(instance, float) and not math.isfinite(instance):
        yield ValidationError(f"{instance} is not a finite number")


_Validator = validators.extend(Draft202012Validator, {"finite": _finite})

_POSITIVE_INT = {"type": "integer", "minimum": 1}
_COUNT = {"type": "integer", "minimum": 0}
_NUMBER = {"type": "number", "finite": True}
_SHAPE = {"type": "array", "items": _POSITIVE_INT, "minItems": 3, "maxItems": 3}
_SOURCE = {
    "type": "object",
    "properties": {"zoo": {"type": "string"}, "kwargs": {"type": "object"}, "search_path": {"type": "string"},
                   "factory": {"type": "string",  # "pkg.module:function" or "/path/to/file.py:function"
                               "pattern": r"^([A-Za-z_][\w.]*|.+\.py):[A-Za-z_][\w.]*$"}},
    "anyOf": [{"required": ["zoo"]}, {"required": ["factory"]}],
}
_PLAN = {
    "type": "object",
    "required": ["fold", "input_shape", "num_classes", "layers"],
    "properties": {
        "fold": _POSITIVE_INT, "input_shape": _SHAPE, "num_classes": _POSITIVE_INT,
        "align": _POSITIVE_INT, "block_of": _POSITIVE_INT, "min_block": _COUNT,
        "width_mult": {"anyOf": [{"type": "null"}, {**_NUMBER, "exclusiveMinimum": 0}]},
        "classifier": {"type": ["string", "null"]},
        "leaf_modules": {"type": "array", "items": {"type": "string"}},
        "spaces": {"type": "array", "items": {"type": "object"}},
        "layers": {"type": "array", "items": {"type": "object"}},
        "edits": {"type": "array", "items": {"type": "object"}},
    },
}
_ARCHITECTURE = {
    "type": "object",
    "required": ["kind"],
    "properties": {"kind": {"enum": ["zoo", "plan"]}},
    "allOf": [
        {"if": {"properties": {"kind": {"const": "zoo"}}},
         "then": {"required": ["name"],
                  "properties": {"name": {"type": "string"}, "align": _POSITIVE_INT, "block_of": _POSITIVE_INT,
                                 "min_block": _COUNT,
                                 "num_classes": _POSITIVE_INT,
                                 "width_mult": {"anyOf": [{"type": "null"}, {**_NUMBER, "exclusiveMinimum": 0}]}}}},
        {"if": {"properties": {"kind": {"const": "plan"}}},
         "then": {"required": ["plan", "source"], "properties": {"plan": _PLAN, "source": _SOURCE}}},
    ],
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "version", "architecture", "fold", "num_classes", "input_shape", "class_names",
                 "normalization", "sha256"],
    "properties": {
        "architecture": _ARCHITECTURE,
        "fold": _POSITIVE_INT,
        "num_classes": _POSITIVE_INT,
        "input_shape": _SHAPE,
        "class_names": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True},
        "normalization": {
            "type": "object", "required": ["mean", "std"],
            "properties": {"mean": {"type": "array", "items": _NUMBER, "minItems": 1},
                           "std": {"type": "array", "items": {**_NUMBER, "exclusiveMinimum": 0}, "minItems": 1}},
        },
        "widths": {"type": "array", "items": _POSITIVE_INT},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "roi": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4, "maxItems": 4},
        "calibration": {  # the cascade thresholds of `foldedcnn calibrate` (label/calibration.py)
            "type": "object", "required": ["low", "high"],
            "properties": {"low": {**_NUMBER, "minimum": 0, "maximum": 1},
                           "high": {**_NUMBER, "minimum": 0, "maximum": 1}},
        },
    },
}


def metadata_problem(meta: Any) -> str | None:
    """None when `meta` fits SCHEMA, else one line naming the field and what is wrong with it."""
    error = best_match(_Validator(SCHEMA).iter_errors(meta))
    if error is None:
        return None
    field = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"field {field}: {error.message}"
