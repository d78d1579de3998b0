"""The triton backend: fused kernels run by Triton's interpreter on CPU tensors against the torch model.

Tolerances: the interpreter computes fp32 `tl.dot` in fp32 (input_precision="ieee"), so fused and
torch logits differ only by summation order, ~1e-6 relative per layer; 1e-4 absolute + relative
leaves room for that over up to 8 layers and nothing more. fp16 activations round to 11 bits at
every layer (~5e-4 relative each): 2e-2 of the logits' norm.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from foldedcnn import fold_model, unfold_logits
from foldedcnn.folded import FoldedModel
from foldedcnn.identity import ModelIdentity
from foldedcnn.infer import BACKENDS, Engine, available_backends
from foldedcnn.infer.backends import BackendFallbackWarning
from foldedcnn.infer.fused import ConvOp, FusedProgram, PoolOp, UnfusableModelError, extract_program
from foldedcnn.models import create_model, get_spec, list_models
from foldedcnn.models.game import GAME_TASKS, build_game_cnn
from foldedcnn.models.noscope import NoScopeCNN

pytest.importorskip("triton")
if os.environ.get("TRITON_INTERPRET") != "1":  # conftest.py sets it before anything imports triton
    pytest.skip("the kernels run in Triton's interpreter here (TRITON_INTERPRET=1)", allow_module_level=True)
pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors on a shared machine

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, params=["unrolled", "generic"])
def feature_kernel(request, monkeypatch) -> bool:
    """Every test runs with both feature kernels: the one specialised to the network and the generic one."""
    from foldedcnn.infer.fused import _run

    unrolled = request.param == "unrolled"
    monkeypatch.setattr(_run, "INTERPRETER_TILING", replace(_run.INTERPRETER_TILING, unrolled=unrolled))
    return unrolled

ZOO = list_models(family="noscope") + list_models(family="game")
#: small inputs (H, W) that every zoo architecture survives; non-square to catch swapped axes
NOSCOPE_HW, GAME_HW, GAME_TWO_UNIT_HW = (6, 7), (11, 13), (15, 17)


def tiny_zoo(name: str, fold: int, hw: tuple[int, int] | None = None, seed: int = 0) -> FoldedModel:
    """Zoo network `name` at `fold` (its real widths, classes and layers) on a small input; biases U(-0.5, 0.5)."""
    torch.manual_seed(seed)
    spec = get_spec(name)
    if spec.family == "noscope":
        real = create_model(name, fold)
        blocks = [m.out_channels for m in real.features if isinstance(m, nn.Conv2d)][::2]
        hw = hw or NOSCOPE_HW
        net = NoScopeCNN(3 * fold, blocks, real.classifier[1].out_features, 2 * fold, hw)
    else:
        _, classes, units, _ = GAME_TASKS[name]
        hw = hw or (GAME_HW if units == 1 else GAME_TWO_UNIT_HW)
        net = build_game_cnn(hw, classes, units, fold=fold)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.uniform_(m.bias, -0.5, 0.5)
    return FoldedModel(net, ModelIdentity(fold, (3, *hw), spec.num_classes)).eval()


def torch_logits(model: FoldedModel, images: torch.Tensor) -> torch.Tensor:
    return Engine(model, backend="torch", device="cpu").predict(images)


def check_zoo(name: str, fold: int) -> None:
    model = tiny_zoo(name, fold)
    engine = Engine(model, backend="triton", device="cpu", max_batch=fold)
    assert engine.backend_name == "triton"
    images = torch.randint(0, 256, (fold, *model.input_shape[1:], 3), dtype=torch.uint8)  # NHWC, one group
    expected = torch_logits(model, images)
    assert expected.abs().max() > 0.1  # logits that can disagree
    torch.testing.assert_close(engine.predict(images), expected, atol=1e-4, rtol=1e-4)


def test_the_zoo_list_holds_every_noscope_and_game_model():
    assert len(ZOO) == 10  # an empty list would silently skip the parametrised tests below


# each zoo model once, the folds 1..4 spread over them; every (model, fold) pair is in the slow test
@pytest.mark.parametrize("name,fold", [(n, 1 + i % 4) for i, n in enumerate(ZOO)])
def test_zoo_model_logits_match_torch(name, fold):
    check_zoo(name, fold)


@pytest.mark.slow
@pytest.mark.parametrize("fold", [1, 2, 3, 4])
@pytest.mark.parametrize("name", ZOO)
def test_every_zoo_model_at_every_fold(name, fold):
    check_zoo(name, fold)


def runner(model: FoldedModel, dtype: torch.dtype = torch.float32, **tiling):
    from foldedcnn.infer.fused._run import INTERPRETER_TILING, FusedRunner

    c, h, w = model.input_shape
    program = extract_program(model.network, (model.fold * c, h, w))
    return FusedRunner(program, CPU, dtype, replace(INTERPRETER_TILING, **tiling))


@pytest.mark.parametrize("name,hw", [("noscope-roundabout", (12, 14)), ("game-sot-timer", (19, 17))])
def test_one_row_bands_recompute_halos_exactly(name, hw):
    # the deepest chains; one final row per band makes every op recompute its neighbours' halo rows,
    # and one program walks all items (group, band) of the persistent grid, reusing its scratch slot
    model = tiny_zoo(name, 1, hw)
    x = torch.randn(1, 3, *model.input_shape[1:])
    banded = runner(model, band_rows=1, programs=1)
    assert banded.bands.shape[0] > 1
    with torch.no_grad():
        torch.testing.assert_close(banded.forward_folded(x), model.forward_folded(x), atol=1e-4, rtol=1e-4)


def test_a_tiling_may_set_the_feature_kernels_warps():
    model = tiny_zoo("noscope-coral", 4)  # 32 channels: 4 warps by default
    assert runner(model).num_warps == 4 and runner(model, num_warps=8).num_warps == 8


def test_raw_uint8_images_are_folded_and_normalised_in_the_first_kernel():
    model = tiny_zoo("noscope-coral", 3)
    norm = {"mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}
    backend = Engine(model, backend="triton", device="cpu", normalization=norm).backend
    reference = Engine(model, backend="torch", device="cpu", normalization=norm)
    images = torch.randint(0, 256, (4, *model.input_shape[1:], 3), dtype=torch.uint8)  # 2 groups, the last holds 1
    folded = backend.forward_images(images, norm)
    assert folded.shape == (2, 3 * 2)
    torch.testing.assert_close(unfold_logits(folded, 3, 4), reference.predict(images), atol=1e-4, rtol=1e-4)
    floats = torch.rand(2, *model.input_shape)  # NCHW floats in [0, 1], one partial group
    torch.testing.assert_close(unfold_logits(backend.forward_images(floats, norm), 3, 2), reference.predict(floats),
                               atol=1e-4, rtol=1e-4)


def test_float16_logits_close_to_float32():
    model = tiny_zoo("noscope-coral", 2)
    x = torch.randn(1, 6, *model.input_shape[1:])
    with torch.no_grad():
        ref = model.forward_folded(x)
    out = runner(model, torch.float16).forward_folded(x.half())
    assert out.dtype == torch.float32
    assert ((out - ref).norm() / ref.norm()).item() < 2e-2


class UserNet(nn.Module):
    """A user's network of the fusable shape, written with functional calls."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 1)
        self.pool = nn.MaxPool2d(3, 2)
        self.drop = nn.Dropout(0.5)
        self.fc1 = nn.Linear(8 * 3 * 3, 16)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        x = self.pool(F.relu(self.conv2(F.relu(self.conv1(x)))))
        return self.fc2(F.relu(self.fc1(self.drop(torch.flatten(x, 1)))))


class FunctionalNet(UserNet):
    """UserNet written as PyTorch's examples write it: functional max-pool (stride and padding as keywords)."""

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 3, stride=2, padding=0)
        return self.fc2(F.relu(self.fc1(self.drop(torch.flatten(x, 1)))))


@pytest.mark.parametrize("network", [UserNet, FunctionalNet])
def test_fold_model_net_runs_fused(network):
    folded = fold_model(network(), 2, torch.randn(2, 3, 8, 8))
    engine = Engine(folded, backend="triton", device="cpu")
    assert engine.backend_name == "triton"
    images = torch.rand(3, 3, 8, 8)
    torch.testing.assert_close(engine.predict(images), torch_logits(folded, images), atol=1e-4, rtol=1e-4)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 8 * 8, 4)

    def forward(self, x):
        return self.fc(torch.flatten(x + self.conv(x), 1))


def _head(c: int, hw: int) -> list[nn.Module]:
    return [nn.Flatten(), nn.Linear(c * hw * hw, 4)]


@pytest.mark.parametrize("network,named", [
    (nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), *_head(8, 8)), "'1' (BatchNorm2d)"),
    (nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(), *_head(8, 4)), "stride (2, 2)"),
    (nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.AvgPool2d(2), *_head(8, 4)), "'1' (AvgPool2d)"),
    (Residual(), "single chain"),
])
def test_unfusable_model_falls_back_to_torch_naming_the_reason(network, named):
    model = FoldedModel(network, ModelIdentity(2, (3, 8, 8), 2)).eval()
    with pytest.warns(BackendFallbackWarning, match="backend 'triton' cannot run this model"):
        engine = Engine(model, backend="triton", device="cpu")
    assert engine.backend_name == "torch"
    assert named in engine.backend.fallback_reason
    images = torch.rand(3, 3, 8, 8)
    torch.testing.assert_close(engine.predict(images), torch_logits(model, images))


def test_a_log_softmax_folded_per_image_is_never_dropped_by_the_kernels():
    from foldedcnn import fold_model

    network = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), *_head(8, 8), nn.LogSoftmax(dim=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the graph edit's warning
        model = fold_model(network, 2, torch.randn(1, 3, 8, 8)).eval()
    with pytest.warns(BackendFallbackWarning, match="backend 'triton' cannot run this model"):
        engine = Engine(model, backend="triton", device="cpu")
    assert "log_softmax_per_image" in engine.backend.fallback_reason
    images = torch.rand(3, 3, 8, 8)
    torch.testing.assert_close(engine.predict(images), torch_logits(model, images))


def test_availability_reasons(monkeypatch):
    triton_cls = BACKENDS["triton"]
    assert triton_cls.unavailable_reason(CPU, torch.float32) is None  # the interpreter
    assert "bfloat16" in triton_cls.unavailable_reason(CPU, torch.bfloat16)
    assert not triton_cls.considered_by_auto(CPU) and triton_cls.considered_by_auto(torch.device("cuda"))
    monkeypatch.delenv("TRITON_INTERPRET")
    assert "TRITON_INTERPRET=1" in triton_cls.unavailable_reason(CPU, torch.float32)
    assert "triton" not in available_backends(CPU, torch.float32)


# ---- the extractor alone (pure torch): a program computed with torch ops equals the network ----

def run_program(program: FusedProgram, x: torch.Tensor) -> torch.Tensor:
    """What the kernels compute, in torch: NCHW features, (H, W, C) flatten, the Linear chain."""
    for op in program.features:
        if isinstance(op, ConvOp):
            x = F.conv2d(x, op.weight, op.bias, padding=op.padding)
            x = F.relu(x) if op.relu else x
        else:
            x = F.max_pool2d(x, op.kernel, op.stride)
    x = x.permute(0, 2, 3, 1).flatten(1)
    for lin in program.classifier:
        x = F.linear(x, lin.weight, lin.bias)
        x = F.relu(x) if lin.relu else x
    return x


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_extracted_program_computes_the_network(data):
    c, h, w = 3, data.draw(st.integers(6, 12)), data.draw(st.integers(6, 12))
    ch, hh, ww = c, h, w
    layers: list[nn.Module] = []
    for _ in range(data.draw(st.integers(1, 3))):
        k = data.draw(st.sampled_from([1, 3]))
        pad = data.draw(st.integers(0, k // 2)) if min(hh, ww) >= k else k // 2  # never an empty map
        cout = data.draw(st.integers(1, 9))
        layers.append(nn.Conv2d(ch, cout, k, padding=pad))
        ch, hh, ww = cout, hh + 2 * pad - k + 1, ww + 2 * pad - k + 1
        relu_after_pool = data.draw(st.booleans())
        layers += [] if relu_after_pool else [nn.ReLU()]
        pool = data.draw(st.sampled_from([(2, 2), (3, 1), (3, 2), None]))
        if pool is not None and min(hh, ww) >= pool[0]:
            layers.append(nn.MaxPool2d(*pool))
            hh, ww = (hh - pool[0]) // pool[1] + 1, (ww - pool[0]) // pool[1] + 1
        layers += [nn.ReLU()] if relu_after_pool else []
    hidden = data.draw(st.integers(1, 7))
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(ch * hh * ww, hidden), nn.ReLU(), nn.Linear(hidden, 3)).eval()
    program = extract_program(net, (c, h, w))
    assert all(isinstance(op, (ConvOp, PoolOp)) for op in program.features)
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        torch.testing.assert_close(run_program(program, x), net(x), atol=1e-5, rtol=1e-5)


def test_extractor_refuses_a_relu_on_the_input_and_a_head_without_linear():
    with pytest.raises(UnfusableModelError, match="before any conv"):
        extract_program(nn.Sequential(nn.ReLU(), nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 2)), (3, 8, 8))
    with pytest.raises(UnfusableModelError, match="end with a flatten and Linear"):
        extract_program(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), (3, 8, 8))
