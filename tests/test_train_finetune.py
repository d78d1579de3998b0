"""The fine-tune of a warm-started folded model never loses the warm start (issue #16, item 1)."""

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import load_file
from train_data import make_set

from foldedcnn.data import DataError, load_data, vtest_path
from foldedcnn.errors import FoldedCNNError
from foldedcnn.folded import FoldedModel
from foldedcnn.train import TrainConfig, train, train_from_config
from foldedcnn.train import config as config_module
from foldedcnn.train.config import FINETUNE_LR_SCALE, finetune_lr_scale
from foldedcnn.train.schedule import learning_rate

pytestmark = pytest.mark.usefixtures("one_thread")


def test_refit_images_must_not_be_negative():
    assert TrainConfig().refit_images == 1024
    with pytest.raises(FoldedCNNError, match=r"refit_images must be >= 0 \(0: no refit\), got -1"):
        TrainConfig(refit_images=-1)


def test_a_warm_start_makes_the_defaults_a_fine_tune():
    scratch = TrainConfig(fold=4, epochs=10)
    warm = TrainConfig(fold=4, epochs=10, init_from="f1/best.safetensors", narrow_epochs=0)  # see test_train_narrow
    assert (scratch.resolved_lr("game"), scratch.resolved_schedule(), scratch.resolved_warmup(10)) == (1e-3, "constant",
                                                                                                     0)
    assert (warm.resolved_lr("game"), warm.resolved_schedule(), warm.resolved_warmup(188)) == (1e-4, "cosine", 1.0)
    assert warm.resolved_warmup(25) == 4.0  # at least 100 steps
    assert warm.resolved_lr("noscope") == pytest.approx(1e-4)
    assert warm.resolved_lr("game", kept=0.09) == 1e-3 and scratch.resolved_lr("game", kept=0.09) == 1e-3
    assert TrainConfig(epochs=1, init_from="x").resolved_warmup(500) == 0.5  # at most half the run
    assert TrainConfig(init_from="x", lr=3e-4, schedule="constant", warmup=0).resolved_lr("game") == 3e-4
    assert scratch.uses_curriculum(111) and not warm.uses_curriculum(111)
    with pytest.raises(FoldedCNNError, match="curriculum would mask classes"):
        TrainConfig(fold=4, init_from="x", curriculum="on")
    with pytest.raises(FoldedCNNError, match="warmup must be in"):
        TrainConfig(epochs=2, warmup=3)


@pytest.mark.parametrize("kept,scale", [(1.0, 0.1), (0.95, 0.1), (0.9, 0.2), (0.8, 0.4), (0.6, 0.8), (0.5, 1.0),
                                        (0.09, 1.0), (1.2, 0.1), (None, 0.1)])
def test_the_fine_tune_rate_follows_how_much_the_warm_start_kept(kept, scale):
    assert finetune_lr_scale(kept) == pytest.approx(scale)


@given(st.floats(0, 2), st.floats(0, 2))
def test_a_warm_start_that_kept_less_never_gets_a_lower_rate(a, b):
    assert FINETUNE_LR_SCALE <= finetune_lr_scale(max(a, b)) <= finetune_lr_scale(min(a, b)) <= 1.0


def test_train_takes_the_rate_from_the_original_s_top1():
    def fine_tune(original_top1: float | None) -> tuple[float, float]:
        torch.manual_seed(0)
        model = FoldedModel.from_zoo("noscope-coral", 1)  # the same untrained model each time: 50 % val
        data = make_set(64, model.input_shape, model.num_classes)
        warm = TrainConfig(fold=1, epochs=1, batch=16, init_from="the original", progress=False)
        result = train(model, data, data, warm, original_top1=original_top1)
        return result.history[0]["val_top1"], result.lr

    assert fine_tune(None) == (50.0, pytest.approx(1e-4))  # the original's top-1 unknown
    assert fine_tune(50.0)[1] == pytest.approx(1e-4)  # kept everything
    assert fine_tune(100.0)[1] == pytest.approx(1e-3)  # lost half
    assert fine_tune(62.5)[1] == pytest.approx(0.4 * 1e-3)  # kept 0.8


def test_a_refitted_warm_start_takes_the_rate_of_its_plain_copy(tmp_path):
    def run(epochs: int, original_top1: float | None, copy_top1: float | None) -> tuple[float, float]:
        torch.manual_seed(0)
        model = FoldedModel.from_zoo("noscope-coral", 1)  # 50 % val as given: as good as an original at 50
        data = make_set(64, model.input_shape, model.num_classes)
        warm = TrainConfig(fold=1, epochs=epochs, batch=16, init_from="the original", progress=False)
        result = train(model, data, data, warm, out=tmp_path, original_top1=original_top1, copy_top1=copy_top1)
        return result.history[0]["val_top1"], result.lr

    assert run(1, original_top1=50.0, copy_top1=25.0) == (50.0, pytest.approx(1e-3))  # the copy lost half
    assert run(1, original_top1=None, copy_top1=None)[1] == pytest.approx(1e-3)  # resumed: its saved state's


def test_a_resumed_fine_tune_keeps_its_rate_without_the_original(tmp_path):
    def run(epochs: int, original_top1: float | None) -> float:
        torch.manual_seed(0)
        model = FoldedModel.from_zoo("noscope-coral", 1)
        data = make_set(64, model.input_shape, model.num_classes)
        warm = TrainConfig(fold=1, epochs=epochs, batch=16, init_from="the original", progress=False)
        return train(model, data, data, warm, out=tmp_path, original_top1=original_top1).lr

    assert run(1, original_top1=100.0) == pytest.approx(1e-3)  # kept half: the full rate
    assert run(1, original_top1=None) == pytest.approx(1e-3)  # resumed: the rate of its saved state


def test_a_resumed_run_keeps_the_rate_it_started_with_when_the_defaults_change(tmp_path, monkeypatch):
    def run(epochs: int) -> float:
        torch.manual_seed(0)
        model = FoldedModel.from_zoo("noscope-coral", 1)
        data = make_set(64, model.input_shape, model.num_classes)
        warm = TrainConfig(fold=1, epochs=epochs, batch=16, init_from="the original", progress=False)
        return train(model, data, data, warm, out=tmp_path / "run", original_top1=50.0).lr

    assert run(2) == pytest.approx(1e-4)
    monkeypatch.setitem(config_module.DEFAULT_LR, "rmsprop", 5e-3)  # a later version's default
    assert run(2) == pytest.approx(1e-4)  # resumed (with nothing left to train): the saved rate
    assert train(FoldedModel.from_zoo("noscope-coral", 1), make_set(64, (3, 50, 50), 2),
                 make_set(64, (3, 50, 50), 2), TrainConfig(fold=1, epochs=1, batch=16, init_from="x", progress=False),
                 original_top1=50.0).lr == pytest.approx(5e-4)  # a new run: the new default


def test_a_control_run_keeps_everything_so_it_fine_tunes_gently(tmp_path):
    """train_from_config measures the original's top-1: the original warm-starting itself (f = 1) kept all of it."""
    torch.manual_seed(0)
    model = FoldedModel.from_zoo("noscope-coral", 1)
    data = make_set(64, model.input_shape, model.num_classes)
    train(model, data, data, TrainConfig(fold=1, epochs=2, batch=16, progress=False), out=tmp_path / "f1")
    original = str(tmp_path / "f1" / "best.safetensors")
    control = TrainConfig(model="noscope-coral", fold=1, epochs=1, batch=16, init_from=original, progress=False)
    assert train_from_config(control, train_set=data, val_set=data).lr == pytest.approx(1e-4)


def test_warm_up_ramps_linearly_then_the_schedule_runs_over_the_rest():
    assert learning_rate(1e-3, "cosine", 0.0, warmup=0.25) == 0.0
    assert learning_rate(1e-3, "cosine", 0.125, warmup=0.25) == pytest.approx(5e-4)
    assert learning_rate(1e-3, "cosine", 0.25, warmup=0.25) == pytest.approx(1e-3)
    assert learning_rate(1e-3, "cosine", 0.625, warmup=0.25) == pytest.approx(5e-4)  # halfway through the rest
    assert learning_rate(1e-3, "constant", 0.9, warmup=0.25) == 1e-3


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_warm_up_never_exceeds_the_base_rate_and_peaks_at_its_end(progress, warmup, other):
    assert 0.0 <= learning_rate(0.01, "cosine", progress, warmup) <= 0.01
    assert learning_rate(0.01, "cosine", other, warmup) <= learning_rate(0.01, "cosine", warmup, warmup) + 1e-15


def test_epoch_0_is_evaluated_and_is_the_best_when_training_only_hurts(tmp_path):
    torch.manual_seed(0)
    model = FoldedModel.from_zoo("noscope-coral", 2)
    data = make_set(96, model.input_shape, model.num_classes)
    learn = TrainConfig(fold=2, epochs=3, batch=16, progress=False)
    trained = train(model, data, data, learn).history[-1]["val_top1"]
    start = {k: v.clone() for k, v in model.network.state_dict().items()}
    wreck = TrainConfig(fold=2, epochs=1, batch=16, lr=1.0, progress=False)  # a rate that destroys
    result = train(model, data, data, wreck, out=tmp_path)
    assert [h["epoch"] for h in result.history] == [0, 1]
    assert result.history[0]["val_top1"] == pytest.approx(trained, abs=1e-3) and trained > 90
    assert result.history[1]["val_top1"] < trained  # the rate did destroy, ...
    assert result.best_val_top1 == result.history[0]["val_top1"]  # ... yet best.safetensors is the model as given
    saved = load_file(str(tmp_path / "best.safetensors"))
    for name, value in start.items():
        assert torch.equal(saved[name], value), name


def _original_then_one_epoch(tmp_path, model: str, data: str, fold: int, epochs: int, lr: float) -> list[float]:
    """Train the original of `model` on `data`, warm-start fold `fold` from it and fine-tune it one epoch with the
    defaults (as the README says: one epoch of the narrow network, then one of the folded model); returns the warm
    start's validation top-1 (the narrow stage's epoch 0), the folded model's per epoch [0, 1] and its best."""
    train_set, val_set = load_data(data, "train"), load_data(data, "val")
    original = tmp_path / "f1"
    train_from_config(TrainConfig(model=model, data=data, epochs=epochs, batch=32, lr=lr, schedule="cosine",
                                  progress=False), original, train_set=train_set, val_set=val_set)
    teacher = str(original / "best.safetensors")
    config = TrainConfig(model=model, fold=fold, data=data, epochs=1, batch=32, init_from=teacher, distill_from=teacher,
                         distill="kl", temperature=4.0, progress=False)
    result = train_from_config(config, tmp_path / f"f{fold}", train_set=train_set, val_set=val_set)
    warm = json.loads((tmp_path / f"f{fold}" / "narrow" / "metrics.json").read_text())[0]["val_top1"]
    return [warm] + [h["val_top1"] for h in result.history] + [result.best_val_top1]


@pytest.mark.slow
@pytest.mark.parametrize("model,data,fold,epochs,lr,useful", [
    ("noscope-coral", "vtest", 4, 8, 1e-3, 90.0),
    ("game-apex-squad-count", "game-apex-squad-count?n_train=3000&n_val=1000", 2, 6, 1e-3, 20.0),  # chance: 4.5 %
], ids=["vtest-f4", "apex-f2"])
def test_one_epoch_of_fine_tuning_keeps_the_warm_start(tmp_path, model, data, fold, epochs, lr, useful):
    """The issue's test: the fine-tune's first epoch (one of the narrow network, one of the folded model) ends
    at most 1 point below the warm start, and the saved best never below it. The folded model's own epoch is
    not held to 1 point against the narrow stage it starts from: at its rate (3e-5 at the peak) the originals
    this test can afford (6 CPU epochs: 45-50 % on apex, many near-ties) move by up to 2 points of 500
    validation images on a rerun in another process, either way (measured over 4 seeds and 3 settings)."""
    if data == "vtest":
        try:
            vtest_path()
        except DataError:
            pytest.skip("vtest.avi not installed (make system-deps)")
    warm, start, after, best = _original_then_one_epoch(tmp_path, model, data, fold, epochs, lr)
    assert warm > useful  # a warm start with something to lose
    assert start >= warm  # the narrow stage hands on its best
    assert after >= warm - 1.0, f"one epoch of fine-tuning dropped validation top-1 from {warm} to {after}"
    assert best >= start  # epoch 0 of the folded model (what the narrow stage handed on) is evaluated and saved


@pytest.mark.parametrize("role", ["init_from", "distill_from"])
def test_a_checkpoint_whose_classes_differ_from_the_data_is_refused_up_front(tmp_path, role):
    """Its logits index its own classes: warm-started or distilled from it, class k of the data would learn from
    another class's output."""
    from foldedcnn.checkpoint import save_checkpoint

    torch.manual_seed(0)
    original = FoldedModel.from_zoo("noscope-coral", 1)
    data = make_set(32, original.input_shape, 2)  # classes c0, c1
    path = save_checkpoint(tmp_path / "o.safetensors", original, class_names=["c1", "c0"])
    config = TrainConfig(fold=2, epochs=1, batch=16, progress=False, **{role: str(path)})
    with pytest.raises(DataError, match=r"labels its classes \[c0, c1\], the checkpoint's are \[c1, c0\]"):
        train_from_config(config, tmp_path / "out", FoldedModel.from_zoo("noscope-coral", 2), train_set=data,
                          val_set=data)
    assert not (tmp_path / "out").exists()  # refused before any work
