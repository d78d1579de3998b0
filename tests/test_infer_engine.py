import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from infer_helpers import reference, tiny_model

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.errors import FoldedCNNError, ShapeError
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import BackendUnavailableError, Engine, NonFiniteInputError
from foldedcnn.infer._batch_independence import piece_sizes, splits_exactly


@pytest.fixture(scope="module")
def model():
    return tiny_model(fold=3)


@pytest.mark.parametrize("batch", [1, 2, 3, 11, 12])
def test_any_batch_both_layouts_numpy_and_chunks(model, batch):
    engine = Engine(model, backend="torch", max_batch=4)  # rounded up to 6 = 2 groups of 3
    assert (engine.fold, engine.num_classes, engine.max_batch, engine.backend_name) == (3, 5, 6, "torch")
    u8 = torch.randint(0, 256, (batch, 3, 8, 8), dtype=torch.uint8)
    ref = reference(model, u8)
    for images in (u8, u8.permute(0, 2, 3, 1), u8.numpy(), u8.permute(0, 2, 3, 1).contiguous().numpy()):
        out = engine.predict(images)
        assert out.shape == (batch, 5) and out.dtype == torch.float32 and out.device.type == "cpu"
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)
    floats = u8.float() / 255
    torch.testing.assert_close(engine.predict(floats.double()), ref, atol=1e-4, rtol=0)


def test_empty_batch(model):
    assert Engine(model, backend="torch").predict(torch.zeros(0, 3, 8, 8)).shape == (0, 5)


def test_ambiguous_layout_is_read_as_nchw():
    m = tiny_model(fold=2, shape=(3, 3, 3))
    x = torch.rand(5, 3, 3, 3)
    torch.testing.assert_close(Engine(m, backend="torch").predict(x), reference(m, x), atol=1e-4, rtol=0)


def test_reduced_precision_by_relative_error(model):
    x = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8)
    ref = reference(model, x)
    out = Engine(model, backend="torch", device="cpu", dtype="bfloat16").predict(x)
    assert ((out - ref).norm() / ref.norm()).item() < 3e-2


@pytest.mark.parametrize(
    "images,message",
    [
        (torch.rand(2, 4, 8, 8), r"expected 3 channels, \(B, 3, 8, 8\) or \(B, 8, 8, 3\); got shape \(2, 4, 8, 8\)"),
        (torch.rand(2, 3, 9, 8), r"expected spatial size 8x8 .* got 9x8"),
        (torch.rand(2, 9, 8, 3), r"expected spatial size 8x8 .* got 9x8"),
        (torch.rand(3, 8, 8), r"rank 4, .* got rank 3 with shape \(3, 8, 8\)"),
        (torch.ones(2, 3, 8, 8, dtype=torch.int64), r"dtype uint8, float16, .* got int64"),
        (np.ones((2, 3, 8, 8), dtype=bool), "uint8 or float, got numpy dtype bool"),
        ([[1.0]], "torch.Tensor or numpy.ndarray, got list"),
    ],
)
def test_bad_input_is_one_clear_shape_error(model, images, message):
    with pytest.raises(ShapeError, match=message):
        Engine(model, backend="torch").predict(images)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_is_refused(model, bad):
    x = torch.rand(7, 3, 8, 8)
    x[4, 1, 2, 3] = bad
    with pytest.raises(NonFiniteInputError, match=r"1 image\(s\) contain NaN or infinity \(first: index 4\)"):
        Engine(model, backend="torch").predict(x)


def test_unavailable_backend_lists_the_available_ones(model):
    with pytest.raises(BackendUnavailableError, match="unknown backend 'tensorrt'; available on cpu float32: torch, "):
        Engine(model, backend="tensorrt")
    with pytest.raises(BackendUnavailableError, match=r"'onnxruntime' is unavailable .*float32 only.*available: torch"):
        Engine(model, backend="onnxruntime", dtype="bfloat16")
    with pytest.raises(FoldedCNNError, match="max_batch must be an integer >= 1"):
        Engine(model, backend="torch", max_batch=0)
    with pytest.raises(FoldedCNNError, match="unknown dtype 'int8'"):
        Engine(model, backend="torch", dtype="int8")


def test_checkpoint_normalization_is_used(tmp_path):
    model = FoldedModel.from_zoo("noscope-coral", 2).eval()
    norm = {"mean": [0.4, 0.5, 0.6], "std": [0.2, 0.3, 0.4]}
    path = save_checkpoint(tmp_path / "c.safetensors", model, normalization=norm)
    engine = Engine(path, backend="torch")
    x = torch.randint(0, 256, (5, 50, 50, 3), dtype=torch.uint8)
    nchw = x.permute(0, 3, 1, 2).double() / 255
    mean, std = torch.tensor(norm["mean"]).view(1, 3, 1, 1), torch.tensor(norm["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = model(((nchw - mean) / std).float())
    torch.testing.assert_close(engine.predict(x), ref, atol=1e-4, rtol=0)
    assert engine.normalization == norm


def test_static_shape_path_runs_whole_buckets(model, monkeypatch):
    # The CUDA-graph path (compile on CUDA) only ever sees bucket sizes; exercise the engine side on CPU.
    from foldedcnn.infer.backends.torch import TorchBackend

    monkeypatch.setattr(TorchBackend, "static_shapes", True)
    engine = Engine(model, backend="torch", max_batch=48)
    x = torch.rand(7, 3, 8, 8)
    folded, n = engine.prepare(x)
    assert (folded.shape[0], n) == (4, 7)  # bucket of 12 images = 4 groups of 3
    torch.testing.assert_close(engine.predict(x), reference(model, x), atol=1e-4, rtol=0)


def test_device_staging_buffers_are_reused(model):
    engine = Engine(model, backend="torch", max_batch=12)
    a = engine._to_device(torch.ones(5, 8, 8, 3, dtype=torch.uint8), 6)
    b = engine._to_device(torch.zeros(6, 8, 8, 3, dtype=torch.uint8), 6)
    assert a.data_ptr() == b.data_ptr() and len(engine._mem.staging) == 1 and int(b.sum()) == 0


def _per_image(images: torch.Tensor) -> torch.Tensor:
    return images.float().sum(dim=(1, 2, 3))[:, None]  # integers below 2**24: exact in any order


def test_batch_independence_is_probed_bit_for_bit():
    """The probe passes a forward whose logits per image depend on that image alone and catches one that also
    reads the rest of its call (here the call's total, as a batch-size-dependent algorithm would, in its bits)."""
    assert splits_exactly(_per_image, 128, 4, (3, 8, 8))
    assert not splits_exactly(lambda x: _per_image(x) + x.float().sum(), 128, 4, (3, 8, 8))


@settings(max_examples=200, deadline=None)
@given(max_batch=st.integers(1, 4096), fold=st.integers(1, 8))
def test_probe_pieces_cut_only_at_multiples_of_f(max_batch, fold):
    sizes = piece_sizes(max_batch, fold)
    assert sum(sizes) == max_batch and all(s > 0 for s in sizes)
    assert all(s % fold == 0 for s in sizes[:-1])  # whole fold groups; the last piece holds what is left


def test_onnxruntime_on_the_cpu_labels_an_image_the_same_in_any_call():
    """The video job cuts its last batches in pieces only for such an engine (label.job.tail_piece); the torch
    backend's oneDNN convolutions need not be (on this machine they are not)."""
    engine = Engine(FoldedModel.from_zoo("noscope-coral", 4), backend="onnxruntime", max_batch=128)
    assert engine.batch_independent
