"""The one container every loader returns, the data errors, and where offline data lives."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import FoldedCNNError


class DataError(FoldedCNNError):
    """A data set that cannot be found or read, or a data spec that names nothing known."""


def check_class_names(data_names: list[str], model_names: list[str], data: str) -> None:
    """Raise DataError when data `data` labels its classes otherwise than a model was trained to: other names, or the
    same ones in another order (label k would then be scored as another class). Names "0".."K-1" on either side
    are placeholders (nothing recorded) and are not compared."""
    def placeholder(names: list[str]) -> bool:
        return list(names) == [str(i) for i in range(len(names))]

    if list(data_names) != list(model_names) and not placeholder(data_names) and not placeholder(model_names):
        raise DataError(f"{data} labels its classes {_some(data_names)}, the checkpoint's are {_some(model_names)}: "
                        "use data of the task (and class order) the checkpoint was trained on")


def _some(names: list[str], shown: int = 8) -> str:
    return "[" + ", ".join(names[:shown]) + (", ..." if len(names) > shown else "") + "]"


@dataclass
class LabelledImages:
    """A labelled image set held in memory.

    images: uint8 (N, 3, H, W); labels: int64 (N,) indexing `class_names`; name: where it came from;
    source: how the images were made when that matters at inference (e.g. the video region they were
    cropped from), recorded in checkpoints as "data_source".
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    name: str
    source: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise DataError(f"images must be uint8 (N, 3, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise DataError(f"labels must be int64 ({self.images.shape[0]},), got {self.labels.dtype} "
                            f"{tuple(self.labels.shape)}")
        k = len(self.class_names)
        if self.labels.numel() and (int(self.labels.min()) < 0 or int(self.labels.max()) >= k):
            raise DataError(f"{self.name}: labels range over [{int(self.labels.min())}, {int(self.labels.max())}] but "
                            f"there are {k} class names; fix the labels or the class names")

    def __len__(self) -> int:
        return self.images.shape[0]

    def class_counts(self) -> list[int]:
        """How many images each class has, in `class_names` order."""
        return torch.bincount(self.labels, minlength=len(self.class_names)).tolist()
