import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from train_data import make_set

from foldedcnn.errors import FoldedCNNError
from foldedcnn.folded import FoldedModel
from foldedcnn.train import TrainConfig, train
from foldedcnn.train.schedule import learning_rate

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cosine_runs_from_base_to_zero_and_constant_stays():
    assert learning_rate(1e-3, "cosine", 0.0) == pytest.approx(1e-3)
    assert learning_rate(1e-3, "cosine", 0.5) == pytest.approx(5e-4)
    assert learning_rate(1e-3, "cosine", 1.0) == pytest.approx(0.0, abs=1e-18)
    assert learning_rate(1e-3, "constant", 0.7) == 1e-3
    with pytest.raises(ValueError, match="constant, cosine"):
        learning_rate(1e-3, "step", 0.5)
    with pytest.raises(FoldedCNNError, match="schedule must be one of"):
        TrainConfig(schedule="linear")


@given(st.floats(0, 1), st.floats(0, 1))
def test_cosine_never_increases(a, b):
    lo, hi = sorted((a, b))
    assert learning_rate(0.01, "cosine", hi) <= learning_rate(0.01, "cosine", lo) + 1e-15


def test_trainer_follows_the_schedule_step_by_step():
    model = FoldedModel.from_zoo("game-apex-squad-count", 2)
    data = make_set(64, model.input_shape, model.num_classes)
    config = TrainConfig(model="test", fold=2, epochs=4, batch=16, lr=2e-3, schedule="cosine", curriculum="off",
                         progress=False)
    history = train(model, data, data, config).history
    # the recorded lr is the last step's: progress (epoch + 48/64) / 4 of the run; row 0 is before training
    expected = [2e-3 * 0.5 * (1 + math.cos(math.pi * (e + 0.75) / 4)) for e in range(4)]
    assert history[0]["lr"] is None and [h["lr"] for h in history[1:]] == pytest.approx(expected)


def test_a_run_saved_before_schedule_existed_still_resumes(tmp_path):
    from foldedcnn.train._state import load_state, save_state

    model = FoldedModel.from_zoo("game-apex-squad-count", 1)
    data = make_set(32, model.input_shape, model.num_classes)
    config = TrainConfig(model="test", epochs=1, batch=16, curriculum="off", progress=False)
    train(model, data, data, config, out=tmp_path)
    state = load_state(tmp_path / "last.safetensors")
    for key in ("schedule", "init_from"):
        del state.meta["config"][key]
    save_state(tmp_path / "last.safetensors", state.tensors, state.meta)
    assert len(train(model, data, data, config, out=tmp_path).history) == 2
