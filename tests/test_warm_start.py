"""Warm start: a folded model initialised from the trained original computes f copies of a channel-pruned
original, one per image, and equals the block-diagonal fold when every channel fits."""

import copy

import pytest
import torch
from torch import nn
from transform_models import TinyMobileNetV2, TinyResNet18, one_thread  # noqa: F401 (fixture)

from foldedcnn.errors import FoldedCNNError
from foldedcnn.folded import FoldedModel
from foldedcnn.models import create_model
from foldedcnn.transform import fold_model, select_channels, warm_start
from foldedcnn.transform.warm_start import plan_of

# float32 sums over a few hundred products: equal up to reassociation
ATOL = 1e-5


def zoo(name: str, fold: int, width_mult: float | None = None) -> FoldedModel:
    """Zoo model `name`; resnet18-cifar10 on 8x8 inputs (its global pooling takes any size) to stay small."""
    if name.startswith("resnet"):
        net = create_model(name, fold, width_mult)
        return FoldedModel(net, fold, net.num_classes, (3, 8, 8))
    return FoldedModel.from_zoo(name, fold, width_mult)


def pruned(original: nn.Module, folded: FoldedModel) -> nn.Module:
    """A copy of `original` whose conv/linear layers ignore every channel that the warm start does not keep."""
    plan, keep = plan_of(folded, original), select_channels(folded, original)
    sizes = {s.id: s.channels for s in plan.spaces}
    net = copy.deepcopy(original)
    with torch.no_grad():
        for lp in plan.layers:
            if lp.kind in ("conv", "linear"):
                kept = torch.cat([torch.isin(torch.arange(sizes[s]), keep[s]) for s in lp.in_spaces])
                net.get_submodule(lp.name).weight[:, ~kept.repeat_interleave(lp.inner)] = 0.0
    return net


def trained_like(model: FoldedModel) -> FoldedModel:
    """`model` with random non-trivial BatchNorm statistics, in eval mode (as a trained original would be)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


CASES = [("game-apex-squad-count", 2), ("game-lol-gold-int", 3), ("noscope-coral", 4), ("resnet18-cifar10", 4)]


@pytest.mark.parametrize("name,fold", CASES)
def test_with_f_times_the_width_it_is_the_original_on_every_image(name, fold):
    torch.manual_seed(0)
    original = trained_like(zoo(name, 1))
    folded = zoo(name, fold, float(fold)).eval()
    warm_start(folded, original.network)
    x = torch.randn(2 * fold + 1, *original.input_shape)
    torch.testing.assert_close(folded(x), original(x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("name,fold", CASES)
def test_at_sqrt_f_width_each_image_sees_the_pruned_original_alone(name, fold):
    torch.manual_seed(0)
    original = trained_like(zoo(name, 1))
    folded = zoo(name, fold).eval()
    warm_start(folded, original.network)
    x = torch.randn(2 * fold, *original.input_shape)
    y = folded(x)
    torch.testing.assert_close(y, FoldedModel(pruned(original.network, folded), 1, original.num_classes,
                                              original.input_shape)(x), atol=ATOL, rtol=0)
    assert not torch.allclose(y, original(x), atol=1e-3)  # channels were really dropped
    x2 = x.clone()
    x2[1] += 3.0  # another image in the same folded input
    torch.testing.assert_close(folded(x2)[[0, *range(2, 2 * fold)]], y[[0, *range(2, 2 * fold)]], atol=ATOL, rtol=0)


def test_it_keeps_the_most_important_channels_and_as_many_as_fit():
    torch.manual_seed(0)
    original = zoo("game-sot-coin-count", 1)
    folded = zoo("game-sot-coin-count", 4)  # widths 32 -> 64 and 8 -> 16: 16 and 4 channels per image
    with torch.no_grad():
        original.network.features[0].weight[5] *= 100.0  # channel 5 of the stem now dominates
    keep = select_channels(folded, original.network)
    plan = plan_of(folded, original.network)
    stem = keep[plan.layer("features.0").out_spaces[0]]
    assert 5 in stem.tolist() and stem.numel() == 16 and bool((stem.diff() > 0).all())
    assert sorted(k.numel() for k in keep.values()) == [3, 4, 15, 16, 16, 16, 16]  # input, narrow, logits, hidden


def test_fold_model_networks_warm_start_too():
    torch.manual_seed(0)
    model = TinyResNet18(num_classes=5)
    original = trained_like(fold_model(model, 1, torch.randn(2, 3, 16, 16)))
    folded = fold_model(model, 4, torch.randn(2, 3, 16, 16)).eval()
    warm_start(folded, original.network)
    x = torch.randn(8, 3, 16, 16)
    expected = FoldedModel(pruned(original.network, folded), 1, 5, (3, 16, 16))(x)
    torch.testing.assert_close(folded(x), expected, atol=ATOL, rtol=0)


def test_grouped_convs_are_refused_with_the_fix():
    model = TinyMobileNetV2(num_classes=5)
    folded = fold_model(model, 2, torch.randn(2, 3, 16, 16))
    with pytest.raises(FoldedCNNError, match="groups=.*from scratch"):
        warm_start(folded, model)


def test_a_hand_widened_network_is_refused():
    original = zoo("game-apex-squad-count", 1)
    folded = zoo("game-apex-squad-count", 2)
    folded.network.features[0] = nn.Conv2d(6, 50, 3, padding=1)  # the plan says 45 channels
    with pytest.raises(FoldedCNNError, match="does not match the fold plan"):
        warm_start(folded, original.network)
