"""Turn user images into validated (B, C, H, W)-or-(B, H, W, C) tensors and a normalising affine map.

Accepted: torch tensors or numpy arrays of rank 4, uint8 (scaled by 1/255) or float in [0, 1]
(checked, with a tolerance of FLOAT_RANGE_TOLERANCE), laid out (B, C, H, W) or (B, H, W, C). The
layout is found by where the model's (C, H, W) sits; when both readings fit (e.g. C == H == W) the
input is taken as (B, C, H, W).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..device import dtype_name
from ..errors import FoldedCNNError, ShapeError

ACCEPTED_DTYPES = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)
FLOAT_RANGE_TOLERANCE = 1e-2  # float images may stray this far outside [0, 1] (resampling overshoot, fp16)


class NonFiniteInputError(FoldedCNNError):
    """Float images holding NaN or infinity; the engine refuses them rather than return garbage logits."""


class InputRangeError(FoldedCNNError):
    """Float images outside [0, 1] (e.g. 0..255 pixel values): the normalisation would be off by a factor of 255."""


class NonFiniteOutputError(FoldedCNNError):
    """A model whose weights or logits are NaN or infinite (training diverged, or a damaged file)."""


def as_tensor(images: Any) -> torch.Tensor:
    """A torch view of `images` (a tensor or numpy array); numpy arrays are not copied when possible."""
    if isinstance(images, torch.Tensor):
        return images
    if isinstance(images, np.ndarray):
        if images.dtype == np.bool_ or images.dtype.kind not in "uif":
            raise ShapeError(f"images must be uint8 or float, got numpy dtype {images.dtype}")
        return torch.from_numpy(images if images.flags.writeable else images.copy())
    raise ShapeError(f"images must be a torch.Tensor or numpy.ndarray, got {type(images).__name__}")


def image_layout(images: torch.Tensor, input_shape: Sequence[int]) -> str:
    """"NCHW" or "NHWC": where the model's (C, H, W) sits in `images` (rank 4, any dtype checked).

    Raises ShapeError naming expected and got for a wrong rank, dtype, channel count or spatial size.
    """
    c, h, w = (int(s) for s in input_shape)
    shape = tuple(images.shape)
    if images.dim() != 4:
        raise ShapeError(f"images must have rank 4, (B, {c}, {h}, {w}) or (B, {h}, {w}, {c}); got rank "
                         f"{images.dim()} with shape {shape}")
    if images.dtype not in ACCEPTED_DTYPES:
        names = ", ".join(map(dtype_name, ACCEPTED_DTYPES))
        raise ShapeError(f"images must have dtype {names}; got {dtype_name(images.dtype)}")
    if shape[1:] == (c, h, w):
        return "NCHW"
    if shape[1:] == (h, w, c):
        return "NHWC"
    if shape[1] == c and shape[3] != c:
        raise ShapeError(f"expected spatial size {h}x{w} for (B, {c}, {h}, {w}) images, got {shape[2]}x{shape[3]} "
                         f"(shape {shape})")
    if shape[3] == c:
        raise ShapeError(f"expected spatial size {h}x{w} for (B, {h}, {w}, {c}) images, got {shape[1]}x{shape[2]} "
                         f"(shape {shape})")
    raise ShapeError(f"expected {c} channels, (B, {c}, {h}, {w}) or (B, {h}, {w}, {c}); got shape {shape}")


def check_finite(images: torch.Tensor) -> None:
    """Raise unless float `images` (B, ...) are finite and in [0, 1] (give or take FLOAT_RANGE_TOLERANCE).

    NaN or infinity raise NonFiniteInputError naming the first bad image; values outside [0, 1]
    raise InputRangeError with the fix (divide 0..255 pixels by 255, or pass uint8).
    """
    if images.dtype == torch.uint8:
        return
    lo, hi = (float(v) for v in torch.aminmax(images.reshape(-1)))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        bad = ~torch.isfinite(images.reshape(images.shape[0], -1)).all(dim=1)
        idx = bad.nonzero().flatten()
        raise NonFiniteInputError(f"{idx.numel()} image(s) contain NaN or infinity (first: index {int(idx[0])}); "
                                  "clean or drop them before predict()")
    if lo < -FLOAT_RANGE_TOLERANCE or hi > 1 + FLOAT_RANGE_TOLERANCE:
        raise InputRangeError(f"float images must be in [0, 1], got values in [{lo:g}, {hi:g}]; divide 0..255 "
                              "pixel values by 255 (images / 255), or pass them as uint8")


def check_finite_logits(logits: torch.Tensor) -> torch.Tensor:
    """`logits` (B, K) if every value is finite, else NonFiniteOutputError (the model, not the input, is broken)."""
    if not bool(torch.isfinite(logits).all()):
        rows = int((~torch.isfinite(logits)).any(dim=1).sum())
        raise NonFiniteOutputError(f"the model produced NaN or infinite logits for {rows} of {logits.shape[0]} "
                                   "images: its weights are broken (training diverged); retrain it, e.g. with a "
                                   "lower learning rate")
    return logits


def check_finite_weights(model: torch.nn.Module) -> None:
    """Raise NonFiniteOutputError if any parameter or buffer of `model` is NaN or infinite."""
    bad = [name for name, t in (*model.named_parameters(), *model.named_buffers())
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise NonFiniteOutputError(f"the model has NaN or infinite weights ({', '.join(bad[:3])}"
                                   f"{', ...' if len(bad) > 3 else ''}): training diverged or the file is damaged; "
                                   "retrain it, e.g. with a lower learning rate")


def affine(normalization: dict[str, Sequence[float]], channels: int, uint8: bool,
           device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of shape (1, 1, C, 1, 1) so that x * scale + shift == (x / s - mean) / std.

    s is 255 for uint8 images and 1 for float images in [0, 1].
    """
    mean = torch.tensor([float(v) for v in normalization["mean"]], dtype=torch.float64)
    std = torch.tensor([float(v) for v in normalization["std"]], dtype=torch.float64)
    if mean.numel() != channels or std.numel() != channels:
        raise ShapeError(f"normalization needs {channels} means and stds (one per channel), "
                         f"got {mean.numel()} and {std.numel()}")
    if bool((std <= 0).any()):
        raise FoldedCNNError(f"normalization std must be > 0, got {std.tolist()}")
    scale = 1.0 / (std * (255.0 if uint8 else 1.0))
    shift = -mean / std
    shape = (1, 1, channels, 1, 1)
    return scale.to(device, dtype).view(shape), shift.to(device, dtype).view(shape)


def fold_normalised(images: torch.Tensor, dst: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> int:
    """Normalise and fold in one pass: images (n, C, H, W) (any strides, an accepted dtype) -> dst
    (G, f, C, H, W) rows [0, ceil(n / f)): dst[i, j] = images[i*f + j] * scale + shift in the operands'
    common dtype (CUDA computes fp16 / bf16 in float32), rounded once to dst's dtype; the padding slots
    of a last partial group are zeroed. Returns the number of groups written."""
    f = dst.shape[1]
    full, rest = divmod(images.shape[0], f)
    torch.addcmul(shift, images[: full * f].unflatten(0, (full, f)), scale, out=dst[:full])
    if rest:
        torch.addcmul(shift[0], images[full * f:], scale[0], out=dst[full, :rest])
        dst[full, rest:].zero_()
    return full + (rest > 0)
