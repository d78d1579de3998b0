"""Evaluation: per-image logits of a FoldedModel over a labelled set, top-1 and a confusion summary."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ShapeError
from ..folded import FoldedModel
from .normalization import normalizer


def check_labels(labels: torch.Tensor, num_classes: int, what: str) -> None:
    """Raise ShapeError unless `labels` (N,) is non-empty and every label is a class index in [0, num_classes)."""
    if labels.numel() == 0:
        raise ShapeError(f"the {what} split is empty; give it images (e.g. a larger n_{what} in the data spec)")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise ShapeError(f"{what} labels range over [{lo}, {hi}], outside the model's classes [0, {num_classes}); "
                         "use data of the task the model was built for")


@torch.no_grad()
def predict_logits(
    model: FoldedModel,
    images: torch.Tensor,
    normalization: dict[str, list[float]],
    *,
    batch: int = 1024,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> float32 logits (N, K) on the CPU, in image order (model in eval mode)."""
    was_training = model.training
    model.eval()
    out = []
    norm = normalizer(normalization, device)
    for i in range(0, images.shape[0], batch):
        x = norm(images[i : i + batch].to(device))
        out.append(model(x).float().cpu())
    model.train(was_training)
    if not out:
        return torch.zeros(0, model.num_classes)
    return torch.cat(out)


@dataclass
class Evaluation:
    """Per-image results: `top1` in percent, mean CE `loss`, `confusion` (K, K) counts [true, predicted]."""

    top1: float
    loss: float
    predictions: torch.Tensor
    confusion: torch.Tensor

    def per_class_top1(self) -> list[float | None]:
        """Top-1 (percent) per true class; None for a class with no images."""
        totals = self.confusion.sum(dim=1)
        return [None if n == 0 else 100.0 * float(self.confusion[k, k]) / float(n) for k, n in enumerate(totals)]

    def top_confusions(self, n: int = 10) -> list[tuple[int, int, int]]:
        """The `n` most frequent (true, predicted, count) mistakes, most frequent first."""
        off = self.confusion.clone()
        off.fill_diagonal_(0)
        counts, flat = off.flatten().sort(descending=True, stable=True)
        k = off.shape[1]
        return [(int(i) // k, int(i) % k, int(c)) for c, i in zip(counts[:n], flat[:n], strict=True) if c > 0]


def evaluate(
    model: FoldedModel,
    images: torch.Tensor,
    labels: torch.Tensor,
    normalization: dict[str, list[float]],
    *,
    batch: int = 1024,
    device: str | torch.device = "cpu",
) -> Evaluation:
    """Top-1 of `model` on uint8 images (N, C, H, W) with int64 labels (N,) in [0, K) (else ShapeError)."""
    check_labels(labels, model.num_classes, "evaluation")
    logits = predict_logits(model, images, normalization, batch=batch, device=device)
    k = model.num_classes
    labels = labels.to(torch.long)
    preds = logits.argmax(dim=1)
    confusion = torch.bincount(labels * k + preds, minlength=k * k).view(k, k)
    n = labels.numel()
    top1 = 100.0 * float((preds == labels).sum()) / n
    loss = float(F.cross_entropy(logits, labels, reduction="sum")) / n
    return Evaluation(top1, loss, preds, confusion)
