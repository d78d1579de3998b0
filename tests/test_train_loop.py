from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from train_data import make_set

from foldedcnn.errors import FoldError, ShapeError
from foldedcnn.folded import FoldedModel
from foldedcnn.models import create_model
from foldedcnn.train import TrainConfig, compute_normalization, normalize, train

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_resnet(fold: int) -> FoldedModel:
    """resnet18-cifar10 on 8x8 inputs (its global pooling takes any size): a small-input ResNet."""
    net = create_model("resnet18-cifar10", fold)
    return FoldedModel(net, replace(net.identity, input_shape=(3, 8, 8)))


@torch.no_grad()
def batch_loss(model: FoldedModel, data, norm) -> float:
    """CE of the whole set as one batch in training mode (BatchNorm on batch statistics)."""
    model.train()
    return float(F.cross_entropy(model(normalize(data.images, norm)), data.labels))


@pytest.mark.parametrize(
    "make,fold,n,epochs",
    [
        (lambda f: FoldedModel.from_zoo("noscope-coral", f), 2, 192, 1),
        (lambda f: FoldedModel.from_zoo("game-apex-squad-count", f), 2, 132, 16),
        (tiny_resnet, 1, 64, 3),
    ],
    ids=["noscope", "game", "resnet"],
)
def test_a_few_epochs_lower_the_loss(make, fold, n, epochs):
    torch.manual_seed(0)
    model = make(fold)
    data = make_set(n, model.input_shape, model.num_classes)
    norm = compute_normalization(data.images)
    before = batch_loss(model, data, norm)
    config = TrainConfig(model="test", fold=fold, epochs=epochs, batch=16, curriculum="off", progress=False)
    result = train(model, data, data, config)
    assert batch_loss(result.model, data, norm) < 0.9 * before
    assert [h["epoch"] for h in result.history] == list(range(epochs + 1))  # 0: the model before training
    assert result.normalization == norm


def test_fold_and_shape_mismatches_are_refused():
    model = FoldedModel.from_zoo("noscope-coral", 2)
    good = make_set(8, (3, 50, 50), 2)
    with pytest.raises(FoldError, match="folded by 2"):
        train(model, good, good, TrainConfig(fold=4, epochs=1, progress=False))
    bad = make_set(8, (3, 32, 32), 2)
    with pytest.raises(ShapeError, match=r"images are \(3, 32, 32\)"):
        train(model, bad, good, TrainConfig(fold=2, epochs=1, progress=False))
    many = make_set(8, (3, 50, 50), 5)
    with pytest.raises(ShapeError, match="5 classes"):
        train(model, many, good, TrainConfig(fold=2, epochs=1, progress=False))


def test_a_non_finite_loss_stops_the_run_within_check_steps_naming_its_step(monkeypatch):
    """Losses are read from the device every CHECK_STEPS steps: the run stops at the first read after the loss
    turns NaN (never CHECK_STEPS steps later), naming the step where it turned and that step's rate."""
    from foldedcnn.train import trainer

    calls = []

    def loss_turning_nan(logits, labels, active):
        calls.append(len(calls))
        loss = F.cross_entropy(logits, labels)
        return loss * float("nan") if len(calls) > 30 else loss  # step 31 (1-based) is the first NaN
    monkeypatch.setattr(trainer, "classification_loss", loss_turning_nan)
    model = FoldedModel.from_zoo("game-apex-squad-count", 1)
    data = make_set(16 * 80, model.input_shape, model.num_classes)  # 80 steps of 16 in the epoch
    config = TrainConfig(model="test", fold=1, epochs=1, batch=16, curriculum="off", progress=False,
                         schedule="constant", lr=1e-3)
    with pytest.raises(trainer.TrainingDivergedError, match=r"epoch 1, step 31: the loss is nan.*now 0\.001"):
        train(model, data, data, config)
    assert len(calls) == 2 * trainer.CHECK_STEPS  # stopped at the read after step 31: step 50, not step 80
