"""Losses on per-image (unfolded) logits: cross-entropy over active classes and distillation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mask_inactive(logits: torch.Tensor, active: torch.Tensor | None, fill: float = float("-inf")) -> torch.Tensor:
    """(B, K) logits with the columns of inactive classes set to `fill`; `active` is a bool (K,) mask. A mask, not
    indices: no step waits for a GPU."""
    if active is None:
        return logits
    return logits.masked_fill(~active.to(logits.device), fill)


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
    if kind == "mse":
        if active is None:
            return F.mse_loss(student, teacher)
        weight = active.to(student.device, student.dtype)
        return ((student - teacher) ** 2 * weight).sum() / (weight.sum() * student.shape[0])
    # inactive columns far below the rest (finite: -inf - -inf is NaN in the KL): 0 probability, as if cut out
    low = torch.finfo(student.dtype).min / 2
    student, teacher = mask_inactive(student, active, low), mask_inactive(teacher, active, low)
    if kind == "kl":
        t = float(temperature)
        log_p = F.log_softmax(student / t, dim=1)
        log_q = F.log_softmax(teacher / t, dim=1)
        return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * t * t
    raise ValueError(f"unknown distillation kind {kind!r}")
