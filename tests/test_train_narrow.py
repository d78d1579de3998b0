"""The narrow stage of a warm-started fold: one image's block trained alone at fold 1, then copied into every block."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from torch import nn
from train_data import make_set
from transform_models import make

import foldedcnn.train.trainer as trainer
from foldedcnn.checkpoint import load_checkpoint, save_checkpoint
from foldedcnn.errors import FoldedCNNError
from foldedcnn.folded import FoldedModel
from foldedcnn.models import create_model
from foldedcnn.train import TrainConfig, train, train_from_config
from foldedcnn.train.config import FINETUNE_AFTER_NARROW_SCALE, NARROW_LR_MULT
from foldedcnn.transform import fill_blocks, fold_model, narrow_model, narrow_widths

pytestmark = pytest.mark.usefixtures("one_thread")


def bn_cnn() -> nn.Module:
    """(B, 3, 16, 16) -> (B, 5): convs with BatchNorm, pooled, a Linear head (fold_model's generic path)."""
    return nn.Sequential(nn.Conv2d(3, 12, 3, padding=1, bias=False), nn.BatchNorm2d(12), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(12, 20, 3, padding=1), nn.BatchNorm2d(20), nn.ReLU(), nn.Flatten(),
                         nn.Linear(20 * 8 * 8, 5))


SOURCE = {"factory": "test_train_narrow:bn_cnn", "kwargs": {}}


def _randomise_norms(net: nn.Module) -> None:
    """Non-trivial BatchNorm statistics and affine weights, so that copying them is tested too."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 2)
                m.bias.uniform_(-1, 1)


@settings(max_examples=12, deadline=None)
@given(fold=st.integers(2, 4), align=st.sampled_from([1, 8]),
       name=st.sampled_from(["game-apex-squad-count", "game-sot-timer", "noscope-coral", "bn_cnn", "mobilenetv2"]))
def test_filled_blocks_compute_the_narrow_network_on_every_image(fold, align, name):
    torch.manual_seed(fold)
    if name == "bn_cnn":
        folded = fold_model(bn_cnn(), fold, torch.zeros(1, 3, 16, 16), align=align, source=SOURCE)
        original = bn_cnn()
    elif name == "mobilenetv2":  # depthwise convs: filter by filter
        original = make(name)
        folded = fold_model(original, fold, torch.zeros(1, 3, 16, 16), align=align,
                            source={"factory": "transform_models:make", "kwargs": {"name": name}})
    else:
        folded, original = FoldedModel.from_zoo(name, fold, align=align), create_model(name, 1)
    narrow = narrow_model(folded, trust_code=True)
    _randomise_norms(narrow.network)
    fill_blocks(folded, narrow, original)
    folded.eval()
    narrow.eval()
    x = torch.randn(3 * fold, *folded.input_shape)
    assert torch.allclose(folded(x), narrow(x), atol=1e-5)  # fp32, a few hundred terms per output
    y = x.clone()
    y[0] = torch.randn_like(y[0])  # another image in position 0 changes no other image's logits
    assert torch.equal(folded(y)[1:fold], folded(x)[1:fold])


@given(width=st.integers(1, 200), fold=st.integers(2, 8), align=st.sampled_from([1, 2, 8]),
       mult=st.sampled_from([None, 0.5, 1.5, 3.0]))
def test_the_narrow_width_fills_one_image_s_block(width, fold, align, mult):
    """The narrow width is the folded width // f (never 0); with the paper's widths it is floor(n * mult / f),
    the rule of checkpoints saved before block_of."""
    from foldedcnn.models.widths import scaled_width

    explicit = fold ** 0.5 if mult is None else mult
    folded_width = scaled_width(width, fold, mult, align)
    narrow_width = scaled_width(width, 1, explicit, align, block_of=fold)
    assert narrow_width == max(1, folded_width // fold)
    if align == 1:
        assert narrow_width == scaled_width(width, 1, explicit / fold, 1)


def _conv_widths(model: FoldedModel) -> list[int]:
    return [m.out_channels for m in model.network.modules() if isinstance(m, nn.Conv2d)]


def test_the_narrow_network_is_one_image_s_block_of_the_folded_widths():
    paper = FoldedModel.from_zoo("game-apex-squad-count", 4, align=1)
    assert narrow_widths(paper) == (2.0, 1, 4, 0)
    assert _conv_widths(narrow_model(paper)) == [16, 16, 16, 16, 4]  # folded 64 and 16: a quarter each
    aligned = FoldedModel.from_zoo("game-apex-squad-count", 2)  # 45 and 11 rounded up to 48 and 16
    assert _conv_widths(aligned) == [48, 48, 48, 48, 16]
    assert _conv_widths(narrow_model(aligned)) == [24, 24, 24, 24, 8]  # the paper's widths give 22 and 5
    assert narrow_widths(FoldedModel.from_zoo("game-apex-squad-count", 2, width_mult=3.0)) == (3.0, 8, 2, 8)
    four = FoldedModel.from_zoo("game-apex-squad-count", 4)  # 64 and 32: 8 per image in the last conv (min_block)
    assert _conv_widths(four) == [64, 64, 64, 64, 32] and _conv_widths(narrow_model(four)) == [16, 16, 16, 16, 8]


@pytest.mark.parametrize("kind", ["zoo", "fold_model"])
def test_a_narrow_network_s_width_rule_survives_its_checkpoint(tmp_path, kind):
    if kind == "zoo":
        folded, widths = FoldedModel.from_zoo("game-apex-squad-count", 2), [24, 24, 24, 24, 8]
    else:  # bn_cnn's 12 and 20 channels: folded 16 and 32 (the paper's 16 and 28)
        folded, widths = fold_model(bn_cnn(), 2, torch.zeros(1, 3, 16, 16), source=SOURCE), [8, 16]
    narrow = narrow_model(folded, trust_code=True)
    assert _conv_widths(narrow) == widths
    save_checkpoint(tmp_path / "narrow.safetensors", narrow)
    back = load_checkpoint(tmp_path / "narrow.safetensors", fold=1, trust_code=True).model
    assert back.identity.block_of == 2
    assert _conv_widths(back) == widths


def test_a_zoo_model_with_its_own_classes_keeps_them_in_its_narrow_network():
    torch.manual_seed(0)
    folded = FoldedModel.from_zoo("noscope-coral", 2, num_classes=3)
    narrow = narrow_model(folded)
    assert narrow.num_classes == 3
    fill_blocks(folded, narrow, create_model("noscope-coral", 1, num_classes=3))
    x = torch.randn(4, *folded.input_shape)
    assert torch.allclose(folded.eval()(x), narrow.eval()(x), atol=1e-5)  # fp32, as above


def test_block_of_is_for_fold_1_networks_only():
    with pytest.raises(FoldedCNNError, match="block_of=2 describes one image's block .* this one has fold 2"):
        FoldedModel.from_zoo("game-apex-squad-count", 2, block_of=2)
    with pytest.raises(FoldedCNNError, match="block_of must be an integer >= 1, got 0"):
        FoldedModel.from_zoo("game-apex-squad-count", 1, block_of=0)


def test_narrow_networks_are_refused_where_there_is_none():
    with pytest.raises(FoldedCNNError, match="this one has fold 1"):
        narrow_model(FoldedModel.from_zoo("noscope-coral", 1))
    sourceless = fold_model(bn_cnn(), 2, torch.zeros(1, 3, 16, 16))
    with pytest.raises(FoldedCNNError, match=r"records no source .*narrow_epochs=0"):
        narrow_model(sourceless)
    folded = FoldedModel.from_zoo("game-apex-squad-count", 4, align=1)
    too_wide = FoldedModel.from_zoo("game-apex-squad-count", 1, width_mult=0.75, align=1)  # 24 > 64 // 4
    with pytest.raises(FoldedCNNError, match="16 channels per image; build the narrow network with narrow_model"):
        fill_blocks(folded, too_wide, create_model("game-apex-squad-count", 1))


def test_narrow_epochs_default_to_epochs_for_a_warm_start_at_fold_above_1():
    assert TrainConfig(fold=4, epochs=6, init_from="f1.safetensors").resolved_narrow_epochs() == 6
    assert TrainConfig(fold=4, epochs=6, init_from="f1.safetensors", narrow_epochs=0).resolved_narrow_epochs() == 0
    assert TrainConfig(fold=1, epochs=6, init_from="f1.safetensors").resolved_narrow_epochs() == 0
    assert TrainConfig(fold=4, epochs=6).resolved_narrow_epochs() == 0
    after = TrainConfig(fold=4, epochs=6, init_from="f1.safetensors")
    assert after.resolved_lr("game", kept=0.1) == pytest.approx(1e-3 * FINETUNE_AFTER_NARROW_SCALE)
    stage = TrainConfig(fold=1, epochs=6, init_from="f1.safetensors", width_mult=0.5, narrow_stage=True)
    assert stage.resolved_lr("game", kept=0.1) == pytest.approx(1e-3 * NARROW_LR_MULT)  # a weak warm start
    assert stage.resolved_lr("noscope", kept=1.0) == pytest.approx(1e-4 * NARROW_LR_MULT)  # one that kept it all
    with pytest.raises(FoldedCNNError, match="narrow_stage marks the fold-1 narrow network's run"):
        TrainConfig(fold=2, init_from="x", narrow_stage=True)
    assert TrainConfig(fold=4, init_from="x", narrow_epochs=0).resolved_lr("game", kept=0.1) == 1e-3
    explicit = TrainConfig(fold=4, epochs=6, init_from="x", lr=2e-3)  # --lr is the narrow stage's rate
    assert explicit.resolved_lr("game") == pytest.approx(1e-3 * FINETUNE_AFTER_NARROW_SCALE)
    assert TrainConfig(fold=1, epochs=6, init_from="x", lr=2e-3, width_mult=0.5).resolved_lr("game") == 2e-3
    with pytest.raises(FoldedCNNError, match="narrow_epochs must be >= 0"):
        TrainConfig(fold=4, init_from="x", narrow_epochs=-1)
    with pytest.raises(FoldedCNNError, match="it needs fold > 1 and init_from"):
        TrainConfig(fold=4, narrow_epochs=3)
    with pytest.raises(FoldedCNNError, match="it needs fold > 1 and init_from"):
        TrainConfig(fold=1, init_from="x", narrow_epochs=3)


def _original(tmp_path, data) -> str:
    torch.manual_seed(0)
    model = FoldedModel.from_zoo("game-apex-squad-count", 1)
    train(model, data, data, TrainConfig(model="game-apex-squad-count", epochs=3, batch=22, progress=False),
          out=tmp_path / "f1")
    return str(tmp_path / "f1" / "best.safetensors")


def _fold2(original: str, out, data, narrow_epochs: int = 2, epochs: int = 2):
    config = TrainConfig(model="game-apex-squad-count", fold=2, epochs=epochs, narrow_epochs=narrow_epochs, batch=22,
                         init_from=original, distill_from=original, distill="kl", temperature=4.0, progress=False)
    torch.manual_seed(0)
    return train_from_config(config, out, train_set=data, val_set=data)


@pytest.fixture(scope="module")
def data():
    return make_set(176, (3, 19, 25), 22)


def test_the_folded_model_starts_from_the_narrow_stage_s_best(tmp_path, data):
    original = _original(tmp_path, data)
    result = _fold2(original, tmp_path / "f2", data)
    narrow = json.loads((tmp_path / "f2" / "narrow" / "metrics.json").read_text())
    assert [h["epoch"] for h in narrow] == [0, 1, 2] and [h["epoch"] for h in result.history] == [0, 1, 2]
    assert result.history[0]["val_top1"] == pytest.approx(max(h["val_top1"] for h in narrow), abs=1e-3)
    assert result.best_val_top1 >= narrow[0]["val_top1"]  # never below the warm start
    assert result.lr == pytest.approx(1e-3 * FINETUNE_AFTER_NARROW_SCALE)


@pytest.mark.parametrize("crash_at", [2, 3, 4], ids=["in-the-narrow-stage", "between-the-stages",
                                                     "in-the-folded-stage"])
def test_an_interrupted_narrow_run_resumes_to_the_same_weights(tmp_path, data, monkeypatch, crash_at):
    original = _original(tmp_path, data)
    _fold2(original, tmp_path / "whole", data)
    calls = {"n": 0}
    check = trainer.check_finite_model

    def crash(model, epoch):  # the end of every epoch, before it is committed: crash in the `crash_at`-th
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise KeyboardInterrupt
        check(model, epoch)

    monkeypatch.setattr(trainer, "check_finite_model", crash)
    with pytest.raises(KeyboardInterrupt):
        _fold2(original, tmp_path / "resumed", data)
    monkeypatch.setattr(trainer, "check_finite_model", check)
    _fold2(original, tmp_path / "resumed", data)
    for stage in ("narrow", "."):
        for name in ("best.safetensors", "last.safetensors"):
            want, got = (load_file(str(tmp_path / run / stage / name)) for run in ("whole", "resumed"))
            assert want.keys() == got.keys()
            assert all(torch.equal(want[k], got[k]) for k in want), (stage, name)
