import json
import warnings

import pytest
import torch
from torch import nn
from transform_models import INPUT_SHAPE, TOY_MODELS

from foldedcnn import create_model, fold_model, list_models
from foldedcnn.folded import FoldedModel
from foldedcnn.models import get_spec
from foldedcnn.transform import FoldPlan

pytestmark = pytest.mark.usefixtures("one_thread")


def _randomize_bn(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            if m.affine:
                nn.init.normal_(m.weight)
                nn.init.normal_(m.bias)
    return model


def _fold(model, fold, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # literal split sizes of the toy model are edited, with a warning
        return fold_model(model, fold, torch.randn(1, *INPUT_SHAPE), **kwargs)


@pytest.mark.parametrize("name", sorted(TOY_MODELS))
def test_fold_1_is_bit_for_bit_the_original(name):
    torch.manual_seed(0)
    model = _randomize_bn(TOY_MODELS[name]()).eval()
    folded = _fold(model, 1)
    folded.network.load_state_dict(model.state_dict(), strict=True)
    assert type(folded.network) is type(model)  # user's class and forward() kept
    x = torch.randn(6, *INPUT_SHAPE)
    with torch.no_grad():
        assert torch.equal(folded.eval()(x), model(x))


@pytest.mark.parametrize("name", ["noscope-roundabout", "game-sot-timer", "resnet18-cifar10"])
def test_fold_1_of_zoo_models_is_bit_for_bit(name):
    torch.manual_seed(0)
    model = _randomize_bn(create_model(name, 1)).eval()
    folded = fold_model(model, 1, torch.randn(1, *model.input_shape))
    folded.network.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, *model.input_shape)
    with torch.no_grad():
        assert torch.equal(folded.eval()(x), model(x))


ZOO_CASES = [(n, f) for n in list_models() for f in ((4,) if n.startswith("resnet") else (2, 3, 4))]


@pytest.mark.parametrize("name,fold", ZOO_CASES)
def test_generic_fold_gives_the_zoo_widths(name, fold):
    spec = get_spec(name)
    folded = fold_model(create_model(name, 1), fold, torch.randn(1, *spec.input_shape), source={"zoo": name})
    generic = {k: tuple(v.shape) for k, v in folded.network.state_dict().items()}
    zoo = {k: tuple(v.shape) for k, v in create_model(name, fold).state_dict().items()}
    assert generic == zoo
    assert (folded.fold, folded.num_classes, folded.input_shape) == (fold, spec.num_classes, spec.input_shape)


@pytest.mark.parametrize("name", ["noscope-roundabout", "game-sot-timer"])
def test_generic_fold_gives_the_zoo_widths_with_align_and_width_mult(name):
    spec = get_spec(name)
    folded = fold_model(create_model(name, 1), 3, torch.randn(1, *spec.input_shape), width_mult=1.5, align=8)
    generic = {k: tuple(v.shape) for k, v in folded.network.state_dict().items()}
    assert generic == {k: tuple(v.shape) for k, v in create_model(name, 3, 1.5, 8).state_dict().items()}


def test_plan_json_round_trip_and_table():
    folded = _fold(TOY_MODELS["everything"](), 3, align=4)
    d = json.loads(json.dumps(folded.plan.to_dict()))
    assert FoldPlan.from_dict(d) == folded.plan
    assert FoldPlan.from_dict(d).to_dict() == folded.plan.to_dict()
    table = folded.plan.table()
    assert "grouped" in table and "depthwise" in table and "graph edit" in table
    grouped = folded.plan.layer("grouped.0")
    assert (grouped.groups, grouped.folded_groups) == (4, 4) and grouped.folded_in % 4 == 0
    dw = folded.plan.layer("dw.0")
    assert dw.folded_groups == dw.folded_in == dw.folded_out  # depthwise stays depthwise
    dw2 = folded.plan.layer("dw2")
    assert dw2.folded_out == 2 * dw2.folded_in and dw2.folded_groups == dw2.folded_in  # multiplier kept
    hidden = [s for s in folded.plan.spaces if s.kind == "scaled"]
    assert all(s.folded % 4 == 0 for s in hidden)


def test_split_sizes_are_edited_with_a_warning():
    with pytest.warns(UserWarning, match=r"split args\[1\]: \[8, 8\] -> \[11, 11\]"):
        folded = fold_model(TOY_MODELS["everything"](), 2, torch.randn(1, *INPUT_SHAPE), align=1)
    assert isinstance(folded.network, torch.fx.GraphModule)
    assert folded.network(torch.randn(2, 6, 16, 16)).shape == (2, 10)


class Hyper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=2, dilation=2, bias=False, padding_mode="reflect",
                              dtype=torch.float64)
        self.bn = nn.BatchNorm2d(6, eps=1e-3, momentum=0.3, affine=False, dtype=torch.float64)
        self.gn = nn.GroupNorm(3, 6, eps=1e-4, dtype=torch.float64)
        self.bn1 = nn.BatchNorm1d(6, track_running_stats=False, dtype=torch.float64)
        self.fc = nn.Linear(6, 4, bias=False, dtype=torch.float64)

    def forward(self, x):
        return self.fc(self.bn1(torch.flatten(nn.functional.adaptive_max_pool2d(self.gn(self.bn(self.conv(x))), 1), 1)))


def test_hyperparameters_dtype_and_training_flags_are_copied():
    model = Hyper().eval()
    model.bn.train()  # a mixed flag must survive
    folded = fold_model(model, 2, torch.randn(2, 3, 8, 8, dtype=torch.float64), align=1)
    net = folded.network
    assert (net.conv.in_channels, net.conv.out_channels, net.fc.in_features) == (6, 9, 9)  # GroupNorm(3): 8 -> 9
    for attr in ("kernel_size", "stride", "padding", "dilation", "padding_mode"):
        assert getattr(net.conv, attr) == getattr(model.conv, attr)
    assert net.conv.bias is None and net.fc.bias is None and net.conv.weight.dtype == torch.float64
    assert (net.bn.eps, net.bn.momentum, net.bn.affine) == (1e-3, 0.3, False)
    assert net.gn.num_groups == 3 and net.gn.num_channels == 9 and net.gn.eps == 1e-4
    assert net.bn1.track_running_stats is False
    assert net.bn.training and not net.conv.training and not folded.training
    assert folded.network(torch.randn(2, 6, 8, 8, dtype=torch.float64)).shape == (2, 8)
    assert model.conv.out_channels == 6  # the original is untouched


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2", "squeezenet", "vgg-bn"])
@pytest.mark.parametrize("fold", [2, 3, 4])
def test_folded_families_train(name, fold):
    torch.manual_seed(fold)
    folded = fold_model(TOY_MODELS[name](), fold, torch.randn(1, *INPUT_SHAPE))
    assert isinstance(folded, FoldedModel) and type(folded.network) is type(TOY_MODELS[name]())
    folded.train()
    images, labels = torch.randn(4 * fold, *INPUT_SHAPE), torch.randint(0, 5, (4 * fold,))
    opt = torch.optim.Adam(folded.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = nn.functional.cross_entropy(folded(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
