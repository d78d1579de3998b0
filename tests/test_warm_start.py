"""Warm start: a folded model initialised from the trained original computes f copies of a channel-pruned
original, one per image, and equals the block-diagonal fold when every channel fits."""

import copy
from dataclasses import replace

import pytest
import torch
from torch import nn
from transform_models import TinyMobileNetV2, TinyResNet18, ToyEverything

from foldedcnn.errors import FoldedCNNError
from foldedcnn.folded import FoldedModel
from foldedcnn.identity import ModelIdentity
from foldedcnn.models import create_model
from foldedcnn.transform import fold_model, select_channels, warm_start
from foldedcnn.transform._warm_start import plan_of

# float32 sums over a few hundred products: equal up to reassociation
ATOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")


def zoo(name: str, fold: int, width_mult: float | None = None) -> FoldedModel:
    """Zoo model `name`; resnet18-cifar10 on 8x8 inputs (its global pooling takes any size) to stay small."""
    if name.startswith("resnet"):
        net = create_model(name, fold, width_mult)
        return FoldedModel(net, replace(net.identity, input_shape=(3, 8, 8)))
    return FoldedModel.from_zoo(name, fold, width_mult)


def pruned(original: nn.Module, folded: FoldedModel) -> nn.Module:
    """A copy of `original` whose conv/linear layers ignore every channel that the warm start does not keep."""
    plan, keep = plan_of(folded, original), select_channels(folded, original)
    sizes = {s.id: s.channels for s in plan.spaces}
    net = copy.deepcopy(original)
    with torch.no_grad():
        for lp in plan.layers:
            if lp.kind in ("conv", "linear") and lp.groups == 1:  # a depthwise filter reads only its own channel
                kept = torch.cat([torch.isin(torch.arange(sizes[s]), keep[s]) for s in lp.in_spaces])
                net.get_submodule(lp.name).weight[:, ~kept.repeat_interleave(lp.inner)] = 0.0
    return net


def trained_like(model: FoldedModel) -> FoldedModel:
    """`model` with random non-trivial BatchNorm statistics, in eval mode (as a trained original would be)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.num_batches_tracked.fill_(50)
    return model.eval()


CASES = [("game-apex-squad-count", 2), ("game-lol-gold-int", 3), ("noscope-coral", 4), ("resnet18-cifar10", 4)]


@pytest.mark.parametrize("name,fold", CASES)
def test_with_f_times_the_width_it_is_the_original_on_every_image(name, fold):
    torch.manual_seed(0)
    original = trained_like(zoo(name, 1))
    folded = zoo(name, fold, float(fold)).eval()
    # calibration images change nothing here: every channel is kept, so the copy is exact and is not refitted
    warm_start(folded, original.network, calibration=torch.randn(2 * fold, *original.input_shape))
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
    alone = FoldedModel(pruned(original.network, folded), ModelIdentity(1, original.input_shape, original.num_classes))
    torch.testing.assert_close(y, alone(x), atol=ATOL, rtol=0)
    assert not torch.allclose(y, original(x), atol=1e-3)  # channels were really dropped
    x2 = x.clone()
    x2[1] += 3.0  # another image in the same folded input
    torch.testing.assert_close(folded(x2)[[0, *range(2, 2 * fold)]], y[[0, *range(2, 2 * fold)]], atol=ATOL, rtol=0)


def test_it_keeps_the_most_important_channels_and_as_many_as_fit():
    torch.manual_seed(0)
    original = zoo("game-sot-coin-count", 1)
    folded = zoo("game-sot-coin-count", 4)  # widths 32 -> 64 and 8 -> 32 (min_block): 16 and 8 channels per image
    with torch.no_grad():
        original.network.features[0].weight[27] *= 100.0  # channel 27 of the stem now dominates
    keep = select_channels(folded, original.network)
    plan = plan_of(folded, original.network)
    stem = keep[plan.layer("features.0").out_spaces[0]]
    assert 27 in stem.tolist() and stem.numel() == 16 and bool((stem.diff() > 0).all())
    assert sorted(k.numel() for k in keep.values()) == [3, 8, 15, 16, 16, 16, 16]  # input, narrow, logits, hidden


def test_fold_model_networks_warm_start_too():
    torch.manual_seed(0)
    model = TinyResNet18(num_classes=5)
    original = trained_like(fold_model(model, 1, torch.randn(2, 3, 16, 16)))
    folded = fold_model(model, 4, torch.randn(2, 3, 16, 16)).eval()
    warm_start(folded, original.network)
    x = torch.randn(8, 3, 16, 16)
    expected = FoldedModel(pruned(original.network, folded), ModelIdentity(1, (3, 16, 16), 5))(x)
    torch.testing.assert_close(folded(x), expected, atol=ATOL, rtol=0)


class FlatBN(nn.Module):
    """conv -> flatten -> BatchNorm1d over (channel, position) features -> Linear: (B, 3, 6, 6) -> (B, 4)."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.norm = nn.BatchNorm1d(width * 36)
        self.fc = nn.Linear(width * 36, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(torch.flatten(torch.relu(self.conv(x)), 1)))


@pytest.mark.parametrize("width_mult", [None, 2.0])
def test_batchnorm_on_flattened_features(width_mult):
    torch.manual_seed(0)
    model, x = FlatBN(), torch.randn(6, 3, 6, 6)
    original = trained_like(fold_model(model, 1, x))
    folded = fold_model(model, 2, x, width_mult=width_mult).eval()
    warm_start(folded, original.network)
    expected = (original(x) if width_mult
                else FoldedModel(pruned(original.network, folded), ModelIdentity(1, (3, 6, 6), 4))(x))
    torch.testing.assert_close(folded(x), expected, atol=ATOL, rtol=0)
    assert int(folded.network.norm.num_batches_tracked) == 50


@pytest.mark.parametrize("width_mult,align", [(2.0, 1), (None, 8)])
def test_depthwise_convs_warm_start_filter_by_filter(width_mult, align):
    """MobileNetV2's depthwise convs: each kept channel's filter in its slot of every block. At width f every
    channel is kept and the folded model is the original on every image; at sqrt(f), the pruned original."""
    torch.manual_seed(0)
    original = fold_model(TinyMobileNetV2(num_classes=5), 1, torch.randn(2, 3, 16, 16))
    with torch.no_grad():
        for m in original.modules():  # filters far from their initial scale: images' logits differ
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(3.0)
    original = trained_like(original)
    folded = fold_model(TinyMobileNetV2(num_classes=5), 2, torch.randn(2, 3, 16, 16), width_mult=width_mult,
                        align=align).eval()
    warm_start(folded, original.network)
    x = torch.randn(6, 3, 16, 16)
    with torch.no_grad():
        expected = FoldedModel(pruned(original.network, folded), ModelIdentity(1, (3, 16, 16), 5))(x)
        assert expected.std(0).max() > 0.05  # images give different logits: any mixing would show
        torch.testing.assert_close(folded(x), expected, atol=ATOL, rtol=0)
        if width_mult == 2.0:
            torch.testing.assert_close(folded(x), original(x), atol=ATOL, rtol=0)


def test_refusals_name_the_problem_and_leave_the_model_untouched():
    model = ToyEverything(num_classes=5)  # a grouped conv and a depthwise one with two filters per channel
    folded = fold_model(model, 2, torch.randn(2, 3, 16, 16))
    before = {k: v.clone() for k, v in folded.network.state_dict().items()}
    with pytest.raises(FoldedCNNError, match="groups=.*from scratch"):
        warm_start(folded, model)
    assert all(torch.equal(v, before[k]) for k, v in folded.network.state_dict().items())
    x = torch.randn(2, 3, 6, 6)
    with pytest.raises(FoldedCNNError, match="original network has .*same architecture"):
        warm_start(fold_model(FlatBN(4), 2, x), FlatBN(6))  # an original of another width
    with pytest.raises(FoldedCNNError, match="folds to 6 < f=9.*--width-mult"):
        warm_start(fold_model(FlatBN(2), 9, x, align=1), FlatBN(2))  # 2 channels x sqrt(9): not one per image


def test_a_hand_widened_network_is_refused():
    original = zoo("game-apex-squad-count", 1)
    folded = zoo("game-apex-squad-count", 2)
    folded.network.features[0] = nn.Conv2d(6, 50, 3, padding=1)  # the plan says 48 channels (45 rounded up to 8s)
    with pytest.raises(FoldedCNNError, match=r"folded network has \(6, 50, 1\), the fold plan says .* = \(6, 48, 1\)"):
        warm_start(folded, original.network)


@pytest.mark.parametrize("name,fold", CASES)
def test_calibration_refit_brings_the_logits_back_towards_the_original(name, fold):
    torch.manual_seed(0)
    original = trained_like(zoo(name, 1))
    plain, refit = zoo(name, fold).eval(), zoo(name, fold).eval()
    warm_start(plain, original.network)
    warm_start(refit, original.network, calibration=torch.randn(64 * fold, *original.input_shape))
    x = torch.randn(8 * fold, *original.input_shape)  # held out: not the calibration images
    with torch.no_grad():
        want = original(x)
        errors = {name: (m(x) - want).pow(2).mean().item() for name, m in (("plain", plain), ("refit", refit))}
        assert errors["refit"] < 0.5 * errors["plain"], errors
        # the refit writes only inside the images' blocks: a changed image 0 changes its logits alone
        other = x.clone()
        other[0] = torch.randn_like(x[0])
        y, y_other = refit(x), refit(other)
    assert not torch.allclose(y[0], y_other[0]) and torch.equal(y[1:], y_other[1:])


def test_refit_needs_a_group_of_calibration_images():
    original = trained_like(zoo("noscope-coral", 1))
    with pytest.raises(FoldedCNNError, match="3 calibration images, fewer than f=4"):
        warm_start(zoo("noscope-coral", 4), original.network, calibration=torch.randn(3, *original.input_shape))


def test_what_folding_leaves_as_it_is_comes_from_the_original_too():
    """A PReLU's one slope is not a widened layer: warm_start and fill_blocks copy it, or the warm-started model
    would compute the original with the slope its code initialises (0.25), not the trained one."""
    from transform_models import Resampler

    from foldedcnn.transform import fill_blocks, narrow_model

    torch.manual_seed(0)
    source = {"factory": "transform_models:make", "kwargs": {"name": "resampler"}}
    original = Resampler().eval()
    with torch.no_grad():
        original.act.weight.fill_(-0.7)  # "trained": far from the 0.25 a fresh model starts with
    folded = fold_model(Resampler(), 2, torch.randn(1, 3, 16, 16), width_mult=2.0, align=1, source=source).eval()
    warm_start(folded, original)  # width f: every channel kept, the copy is exact
    x = torch.randn(6, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), original(x), atol=ATOL, rtol=0)
        narrow = narrow_model(folded, trust_code=True).eval()  # at width f, the narrow network is the original's
        narrow.network.load_state_dict(original.state_dict())
        wide = fold_model(Resampler(), 2, torch.randn(1, 3, 16, 16), width_mult=2.0, align=1, source=source).eval()
        fill_blocks(wide, narrow, original)
        torch.testing.assert_close(wide(x), original(x), atol=ATOL, rtol=0)
