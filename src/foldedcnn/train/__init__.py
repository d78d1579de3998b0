"""Training FoldedCNNs: CE on unfolded logits, distillation, curriculum, resumable checkpoints."""

from ._fresh import FreshDraws
from .config import TrainConfig
from .curriculum import Curriculum
from .evaluation import Evaluation, evaluate, predict_logits
from .losses import classification_loss, distillation_loss
from .normalization import compute_normalization, normalize
from .recipe import build_model, load_teacher, narrow_history, teacher_logits, train_from_config, warm_start_from
from .trainer import TrainingDivergedError, TrainResult, train

__all__ = [
    "Curriculum",
    "Evaluation",
    "FreshDraws",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "build_model",
    "classification_loss",
    "compute_normalization",
    "distillation_loss",
    "evaluate",
    "load_teacher",
    "narrow_history",
    "normalize",
    "predict_logits",
    "teacher_logits",
    "train",
    "train_from_config",
    "warm_start_from",
]
