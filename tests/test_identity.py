"""Models say who they are: the Engine takes a zoo network, a FoldedModel or a checkpoint, and uses the
normalisation training stored on the model."""

from __future__ import annotations

import pytest
import torch
from train_data import make_set

from foldedcnn import Engine, create_model
from foldedcnn.checkpoint import load_checkpoint, save_checkpoint
from foldedcnn.errors import FoldedCNNError
from foldedcnn.folded import FoldedModel
from foldedcnn.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")


def images(n: int, shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_engine_accepts_a_zoo_network_a_folded_model_and_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = create_model("noscope-coral", fold=4)
    x = images(6, (3, 50, 50))
    from_network = Engine(net, backend="torch", device="cpu").predict(x)
    folded = FoldedModel(net)
    from_folded = Engine(folded, backend="torch", device="cpu").predict(x)
    path = save_checkpoint(tmp_path / "coral.safetensors", folded)
    from_path = Engine(path, backend="torch", device="cpu").predict(x)
    expected = folded((x.float() / 255 - 0.5) / 0.25)  # an untrained zoo model gets the default normalisation
    for logits in (from_network, from_folded, from_path):
        assert logits.shape == (6, 2)
        torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)  # float32, one network


def test_engine_refuses_a_network_that_says_nothing_about_itself():
    with pytest.raises(FoldedCNNError, match="carries no ModelIdentity.*fold_model"):
        Engine(torch.nn.Conv2d(3, 2, 3), backend="torch", device="cpu")


def test_a_trained_model_carries_its_normalisation_into_the_engine(tmp_path):
    data = make_set(48, (3, 19, 25), 22)
    val = make_set(16, (3, 19, 25), 22, seed=1)
    cfg = TrainConfig(model="game-apex-squad-count", fold=2, epochs=1, batch=16, progress=False)
    torch.manual_seed(0)
    result = train(FoldedModel.from_zoo("game-apex-squad-count", 2), data, val, cfg, out=tmp_path / "run")
    trained = result.model
    assert trained.identity.normalization == result.normalization
    assert trained.identity.class_names == tuple(data.class_names)
    assert result.normalization["mean"] != [0.5, 0.5, 0.5]  # the data's own statistics, not the default
    x = images(5, (3, 19, 25), seed=2)
    from_model = Engine(trained, backend="torch", device="cpu").predict(x)
    assert load_checkpoint(result.best_path).model.normalization == trained.normalization  # epoch 0 or 1
    ckpt = save_checkpoint(tmp_path / "last.safetensors", trained)  # the final weights (best may be epoch 0)
    from_ckpt = Engine(ckpt, backend="torch", device="cpu").predict(x)
    torch.testing.assert_close(from_model, from_ckpt, atol=1e-5, rtol=1e-5)  # float32, identical weights
