"""Evaluation: per-image logits of a FoldedModel over a labelled set, top-1 and a confusion summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..device import fast_layout
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
    """uint8 images (N, C, H, W) -> float32 logits (N, K) on the CPU, in image order (model in eval mode; on the
    CPU its weights stay in the faster layout, device.fast_layout)."""
    was_training = model.training
    fast_layout(model, device)
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

    def per_class_scores(self) -> list[dict[str, float | int | None]]:
        """Per class k, in percent: precision (of the images predicted k, the share truly k), recall (of the images
        truly k, the share predicted k: per-class top-1), F1 (their harmonic mean); None where a share has no
        images; and support (images truly k)."""
        hits = self.confusion.diagonal().double()
        truly, predicted = self.confusion.sum(dim=1), self.confusion.sum(dim=0)
        rows = []
        for k in range(self.confusion.shape[0]):
            precision = None if predicted[k] == 0 else 100.0 * float(hits[k] / predicted[k])
            recall = None if truly[k] == 0 else 100.0 * float(hits[k] / truly[k])
            f1 = (None if precision is None or recall is None else
                  0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
            rows.append({"precision": precision, "recall": recall, "f1": f1, "support": int(truly[k])})
        return rows

    def to_dict(self, class_names: list[str], detail_limit: int = 20) -> dict[str, Any]:
        """JSON-able summary: top1, macro_f1 (over classes with images), the 10 top confusions and, when K <=
        `detail_limit`, per-class precision / recall / F1 / support and the confusion matrix [true][predicted]."""
        scores = self.per_class_scores()
        f1s = [r["f1"] for r in scores if r["f1"] is not None]
        out: dict[str, Any] = {
            "top1": round(self.top1, 4),
            "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
            "top_confusions": [{"true": class_names[t], "predicted": class_names[p], "count": c}
                               for t, p, c in self.top_confusions(10)],
        }
        if len(class_names) <= detail_limit:
            out["per_class"] = {name: {k: v if v is None or k == "support" else round(v, 4) for k, v in row.items()}
                                for name, row in zip(class_names, scores, strict=True)}
            out["confusion"] = {"classes": list(class_names), "matrix": self.confusion.tolist()}
        return out

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
