import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transform_models import INPUT_SHAPE, ChannelSoftmax, TinyVGG

from foldedcnn import FoldedCNNError, ShapeError, UnsupportedOpError, fold_model, register_rule
from foldedcnn.errors import FoldedCNNError as BaseError
from foldedcnn.transform import rules

pytestmark = pytest.mark.usefixtures("one_thread")


X = torch.randn(1, *INPUT_SHAPE)


@pytest.fixture
def fresh_rules(monkeypatch):
    monkeypatch.setattr(rules, "_RULES", dict(rules._RULES))


class Erf(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.erf(self.conv(x)).mean((2, 3)))


def test_unsupported_op_names_the_node_and_the_fix(fresh_rules):
    assert issubclass(UnsupportedOpError, BaseError)
    with pytest.raises(UnsupportedOpError, match=r"node 'softmax'.*would mix the folded images' channels") as err:
        fold_model(ChannelSoftmax(), 2, X)
    assert "passthrough" not in str(err.value)  # that advice would give a model that mixes the images
    where = r"node 'erf' \(call_function erf\) at test_transform_errors.py:\d+ `return self.fc"
    with pytest.raises(UnsupportedOpError, match=where):
        fold_model(Erf(), 2, X)
    register_rule(torch.erf, "passthrough")
    assert fold_model(Erf(), 2, X, align=1).network.conv.out_channels == 5  # floor(4 * sqrt(2))


class Gate(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x  # data-dependent control flow: fx cannot trace it


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.gate = Gate()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.gate(self.conv(x)).amax((2, 3)))


def test_untraceable_module_can_be_marked_as_a_leaf(fresh_rules):
    with pytest.raises(UnsupportedOpError, match=r"leaf_modules=\(ThatModule,\)"):
        fold_model(Gated(), 2, X)
    with pytest.raises(UnsupportedOpError, match="register_rule\\(Gate, 'passthrough'\\)"):
        fold_model(Gated(), 2, X, leaf_modules=(Gate,))
    register_rule(Gate, "passthrough")
    folded = fold_model(Gated(), 2, X, leaf_modules=(Gate,))
    assert folded.plan.leaf_modules == ["test_transform_errors:Gate"]
    assert folded(torch.randn(3, *INPUT_SHAPE)).shape == (3, 2)


class HardView(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(512, 2)

    def forward(self, x):
        return self.fc(F.max_pool2d(self.conv(x), 2).view(-1, 512))


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 3, 3, 3))

    def forward(self, x):
        return F.conv2d(x, self.w).mean((2, 3))


class Sliced(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.conv(x)[:, :4].mean((2, 3)))


class TwoOutputs(TinyVGG):
    def forward(self, x):
        y = super().forward(x)
        return y, y


class LogitsSoftmax(TinyVGG):
    def forward(self, x):
        return torch.softmax(super().forward(x), dim=1)


class HiddenLogSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(F.log_softmax(self.conv(x).mean((2, 3)), dim=1))


class ChannelPad(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(F.pad(self.conv(x), (0, 0, 0, 0, 1, 1)).amax((2, 3)))


class ChannelPReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.act = nn.PReLU(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).mean((2, 3)))


@pytest.mark.parametrize("model,message", [
    (LogitsSoftmax(), r"softmax over the logits.*apply softmax twice.*Return the logits \(or log_softmax"),
    (HiddenLogSoftmax(), r"node 'log_softmax'.*features that are not the logits"),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softmax2d(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)),
     "a feature map's channels"),
    (ChannelPad(), "pads the channel or batch axis"),
    (ChannelPReLU(), "slope per channel"),
])
def test_ops_that_would_mix_the_images_are_refused(model, message):
    with pytest.raises(UnsupportedOpError, match=message):
        fold_model(model, 2, X)


def test_hard_coded_view_is_refused_only_where_it_breaks():
    assert fold_model(HardView(), 1, X).plan.layer("fc").folded_in == 512
    with pytest.raises(UnsupportedOpError, match=r"node 'view'.*hard-coded size 512 becomes 704.*x.size\(0\), -1"):
        fold_model(HardView(), 2, X, align=1)  # 8 -> floor(8 * sqrt(2)) = 11 channels of 64 values


@pytest.mark.parametrize(
    "model,kwargs,error,message",
    [
        (Functional(), {}, UnsupportedOpError, "functional layer"),
        (Sliced(), {}, UnsupportedOpError, "indexes a tensor"),
        (TwoOutputs(), {}, UnsupportedOpError, "must return one tensor of logits"),
        (TinyVGG(), {"classifier": "nope"}, UnsupportedOpError, "classifier='nope' is not a Conv2d/Linear"),
        (TinyVGG(), {"width_mult": 0}, FoldedCNNError, "width_mult must be > 0"),
        (TinyVGG(), {"align": 0}, FoldedCNNError, "align must be an integer >= 1"),
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(14, 2)), {}, UnsupportedOpError, "Linear must see"),
    ],
)
def test_documented_errors(model, kwargs, error, message):
    with pytest.raises(error, match=message):
        fold_model(model, 2, X, **kwargs)


def test_bad_example_input_and_rule():
    with pytest.raises(ShapeError, match=r"\(B, C, H, W\)"):
        fold_model(TinyVGG(), 2, torch.randn(3, 16, 16))
    with pytest.raises(ShapeError, match="cannot run on example_input"):
        fold_model(TinyVGG(), 2, torch.randn(1, 4, 16, 16))
    with pytest.raises(FoldedCNNError, match="unknown rule 'elementwise'"):
        register_rule(torch.erf, "elementwise")


def test_classifier_can_be_named():
    folded = fold_model(TinyVGG(), 3, X, classifier="classifier.3")
    assert folded.plan.layer("classifier.3").folded_out == 15
    assert folded.plan.layer("classifier.3").role == "classifier"


class MaxRoll(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3)
        self.b = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = torch.maximum(self.a(x), self.b(x)).roll(1, dims=3)
        return self.fc(y.mean((2, 3)))


def test_join_and_callable_rules(fresh_rules):
    register_rule(torch.maximum, "join")

    def spatial_roll(analysis, node):  # channels unchanged unless the roll is over channels
        if node.kwargs.get("dims") in (0, 1):
            raise analysis.fail(node, "rolls across images")
        return analysis.desc(node, node.args[0])

    register_rule("roll", spatial_roll)
    folded = fold_model(MaxRoll(), 4, X)
    assert folded.plan.layer("a").out_spaces == folded.plan.layer("b").out_spaces  # joined by maximum
    assert folded(torch.randn(5, *INPUT_SHAPE)).shape == (5, 2)
