import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from foldedcnn import FoldedCNNError, FoldError, UnknownModelError, create_model, list_models
from foldedcnn.models import MIN_BLOCK, PAPER_WIDTHS, ModelSpec, get_spec, register_model, scaled_width
from foldedcnn.models.game import GameCNN
from foldedcnn.models.noscope import NoScopeCNN
from foldedcnn.models.resnet import ResNetCIFAR


def test_zoo_has_the_papers_twelve_models():
    assert len(list_models()) == 12
    assert len(list_models(family="noscope")) == 4
    assert len(list_models(family="game")) == 6
    assert list_models(family="resnet") == ["resnet18-cifar10", "resnet18-cifar100"]


def test_list_models_takes_a_glob_like_timm():
    assert list_models("noscope*") == ["noscope-coral", "noscope-night", "noscope-roundabout", "noscope-taipei"]
    assert list_models("*cifar1?0") == ["resnet18-cifar100"]
    assert list_models("game-lol-*", family="game") == ["game-lol-gold-fraction", "game-lol-gold-int",
                                                       "game-lol-timer-minutes"]
    assert list_models("noscope") == [] and list_models("noscope-coral") == ["noscope-coral"]


@pytest.mark.parametrize("name,fold", [("noscope-coral", 2), ("game-apex-squad-count", 3), ("resnet18-cifar10", 4)])
def test_create_model_with_another_number_of_classes(tmp_path, name, fold):
    from foldedcnn import FoldedModel
    from foldedcnn.checkpoint import load_checkpoint, save_checkpoint

    model = create_model(name, fold, num_classes=5)
    c, h, w = get_spec(name).input_shape
    assert model.num_classes == 5 and model(torch.randn(2, fold * c, h, w)).shape == (2, fold * 5)
    ck = load_checkpoint(save_checkpoint(tmp_path / "m.safetensors", FoldedModel(model)))
    assert ck.model.num_classes == 5 and len(ck.class_names) == 5  # the checkpoint rebuilds the 5-class network
    assert ck.meta["architecture"]["num_classes"] == 5
    with pytest.raises(FoldedCNNError, match="num_classes must be an integer >= 1"):
        create_model(name, fold, num_classes=0)


def _valid_folds(name):
    return [1, 4] if name.startswith("resnet") else [1, 2, 3, 4]


CASES = [(n, f) for n in list_models() for f in (1, 2, 3, 4)]


@pytest.mark.parametrize("name,fold", CASES)
def test_zoo_model_folds(name, fold):
    spec = get_spec(name)
    if fold not in _valid_folds(name):
        with pytest.raises(FoldError, match="1, 4, 9"):
            create_model(name, fold)
        return
    torch.manual_seed(0)
    model = create_model(name, fold)
    assert (model.fold, model.num_classes, model.input_shape) == (fold, spec.num_classes, spec.input_shape)
    c, h, w = spec.input_shape
    x = torch.randn(3, fold * c, h, w)
    y = model(x)
    assert y.shape == (3, fold * spec.num_classes)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all()
        assert p.grad.abs().sum() > 0, f"{pname} gradient is all zero"


@pytest.mark.parametrize(
    "base,expected", [(16, [16, 22, 27, 32]), (32, [32, 45, 55, 64]), (128, [128, 181, 221, 256])]
)
def test_widths_are_the_papers(base, expected):
    assert [scaled_width(base, f, align=PAPER_WIDTHS) for f in (1, 2, 3, 4)] == expected


@given(st.integers(1, 600), st.integers(1, 9))
def test_default_widths_are_multiples_of_8_when_folded_and_the_original_at_f1(base, fold):
    w = scaled_width(base, fold)
    least = max(scaled_width(base, fold, align=PAPER_WIDTHS), fold * min(base, MIN_BLOCK))  # paper's, or 8 per image
    if fold == 1:
        assert w == base
    else:
        assert w % 8 == 0 and least <= w < least + 8


@given(st.integers(1, 600), st.integers(2, 9), st.integers(0, 16), st.sampled_from([PAPER_WIDTHS, 8, 16]))
def test_every_image_keeps_min_block_channels_of_a_hidden_layer(base, fold, min_block, align):
    """Each image's block holds min(w, min_block) channels or more, and the minimum adds no more than that."""
    w = scaled_width(base, fold, align=align, min_block=min_block)
    plain = scaled_width(base, fold, align=align, min_block=0)
    assert w // fold >= min(base, min_block) and w >= plain
    if w > plain:  # raised by the minimum: to the least multiple of align that holds it
        assert w - align < fold * min(base, min_block) <= w
    narrow = scaled_width(base, 1, math.sqrt(fold), align, block_of=fold, min_block=min_block)
    assert narrow == max(1, w // fold)  # one image's block of it (transform.narrow_model), never empty


def test_game_models_keep_8_channels_per_image_in_their_last_conv():
    """sqrt(f) alone leaves the 8-channel conv before the classifier 5 channels per image at f = 3 and 4 at f = 4;
    the default keeps 8 (24 and 32 folded), the paper's widths (align 1) and min_block=0 do not."""
    assert [_conv_widths(create_model("game-lol-gold-int", f))[-1] for f in (1, 2, 3, 4)] == [8, 16, 24, 32]
    assert [_conv_widths(create_model("game-lol-gold-int", f, min_block=0))[-1] for f in (2, 3, 4)] == [16, 16, 16]
    paper = [create_model("game-lol-gold-int", f, align=PAPER_WIDTHS) for f in (2, 3, 4)]
    assert [_conv_widths(m)[-1] for m in paper] == [11, 13, 16]
    assert create_model("game-lol-gold-int", 4).identity.min_block == MIN_BLOCK
    assert create_model("game-lol-gold-int", 4, align=PAPER_WIDTHS).identity.min_block == 0


def test_align_and_width_mult():
    assert scaled_width(16, 3, align=8) == 32
    assert scaled_width(16, 2) == 24 and scaled_width(128, 2) == 184 and scaled_width(128, 2, align=PAPER_WIDTHS) == 181
    assert scaled_width(20, 1, width_mult=1.15) == 23
    assert scaled_width(32, 4, width_mult=4) == 128


def _conv_widths(model):
    return [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def _linear_widths(model):
    return [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)]


@pytest.mark.parametrize("fold", [1, 2, 3, 4])
def test_noscope_and_game_widths(fold):
    m = math.sqrt(fold)
    coral = create_model("noscope-coral", fold, align=PAPER_WIDTHS)
    assert isinstance(coral, NoScopeCNN)
    assert _conv_widths(coral) == [math.floor(16 * m)] * 2
    assert _linear_widths(coral) == [math.floor(128 * m), 2 * fold]
    assert coral.features[0].in_channels == 3 * fold
    game = create_model("game-sot-timer", fold, align=PAPER_WIDTHS)
    assert isinstance(game, GameCNN)
    assert _conv_widths(game) == [math.floor(32 * m)] * 7 + [math.floor(8 * m)]
    assert _linear_widths(game) == [27 * fold]
    default = create_model("game-sot-timer", fold)  # tensor-core widths; the classifier keeps f*K outputs
    assert all(w % 8 == 0 for w in _conv_widths(default)) and default.identity.align == (8 if fold > 1 else 1)
    assert _linear_widths(default) == [27 * fold]


def test_resnet_widths_double_at_fold_4():
    r = create_model("resnet18-cifar10", 4)
    assert isinstance(r, ResNetCIFAR)
    assert sorted(set(_conv_widths(r))) == [128, 256, 512, 1024]
    assert r.fc.out_features == 40


def test_registry_refuses_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="already registered"):
        register_model(ModelSpec("noscope-coral", "noscope", (3, 50, 50), 2, build=lambda **_: None))
    with pytest.raises(UnknownModelError, match="did you mean noscope-coral"):
        create_model("noscope-corral")


@pytest.mark.parametrize("fold", [0, 2.5, "3"])
def test_bad_fold(fold):
    with pytest.raises(FoldError):
        create_model("noscope-coral", fold)
