"""Losses on per-image (unfolded) logits: cross-entropy over active classes and distillation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mask_inactive(logits: torch.Tensor, active: torch.Tensor | None) -> torch.Tensor:
    """(B, K) logits with the columns of inactive classes set to -inf; `active` is a bool (K,) mask."""
    if active is None:
        return logits
    return logits.masked_fill(~active.to(logits.device), float("-inf"))


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of (B, K) logits against (B,) labels, over the active classes only.

    Every label must be an active class (the trainer never batches images of inactive classes).
    """
    return F.cross_entropy(mask_inactive(logits, active), labels)


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    kind: str = "mse",
    temperature: float = 1.0,
    active: torch.Tensor | None = None,
) -> torch.Tensor:
    """Distillation of (B, K) student logits toward (B, K) teacher logits (no gradient to the teacher).

    "mse": mean squared error on logits (the paper's, after Ba & Caruana); "kl": KL(teacher || student)
    of temperature-softened distributions, scaled by T^2 (Hinton et al.). Only active columns count.
    """
    teacher = teacher.detach().to(student.dtype)
    keep = None if active is None else active.to(student.device)  # masks, not indices: no step waits for a GPU
    if kind == "mse":
        if keep is None:
            return F.mse_loss(student, teacher)
        weight = keep.to(student.dtype)
        return ((student - teacher) ** 2 * weight).sum() / (weight.sum() * student.shape[0])
    if keep is not None:  # inactive columns far below the rest: 0 probability after the softmax, as if cut out
        low = torch.finfo(student.dtype).min / 2
        student, teacher = student.masked_fill(~keep, low), teacher.masked_fill(~keep, low)
    if kind == "kl":
        t = float(temperature)
        log_p = F.log_softmax(student / t, dim=1)
        log_q = F.log_softmax(teacher / t, dim=1)
        return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * t * t
    raise ValueError(f"unknown distillation kind {kind!r}")
