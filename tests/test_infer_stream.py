"""Engine.predict_stream: on CPU exactly predict() per batch; on CUDA the pipelined path (skipped without CUDA)."""

import pytest
import torch
from infer_helpers import reference, tiny_model

from foldedcnn.infer import Engine
from foldedcnn.infer._preprocess import fold_normalised

# batch sizes with f = 3 and max_batch 9: not multiples of f, several chunks with a partial last one, empty, one
SIZES = [13, 9, 0, 29, 1, 5]


@pytest.fixture(scope="module")
def model():
    return tiny_model(fold=3)


def _batches(layout: str = "NHWC", dtype: torch.dtype = torch.uint8, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in SIZES:
        x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
        x = x if dtype == torch.uint8 else x.to(dtype) / 255
        out.append(x.permute(0, 2, 3, 1).contiguous() if layout == "NHWC" else x)
    return out


def test_stream_on_cpu_gives_predicts_logits_in_order(model):
    engine = Engine(model, backend="torch", device="cpu", max_batch=8)  # 9 images per chunk
    batches = _batches()
    streamed = list(engine.predict_stream(iter(batches)))
    assert [s.shape for s in streamed] == [(n, 5) for n in SIZES]
    for got, x in zip(streamed, batches, strict=True):
        assert torch.equal(got, engine.predict(x))
        torch.testing.assert_close(got, reference(model, x.permute(0, 3, 1, 2)), atol=1e-4, rtol=0)


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("layout,dtype", [("NHWC", torch.uint8), ("NCHW", torch.float32)])
def test_one_pass_normalise_and_fold_equals_prepare(model, channels_last, layout, dtype, monkeypatch):
    # the GPU pipeline's fold kernel, run on the CPU against the engine's copy-then-normalise path
    from foldedcnn.infer.backends.torch import TorchBackend

    monkeypatch.setattr(TorchBackend, "channels_last", channels_last)
    engine = Engine(model, backend="torch", device="cpu", max_batch=12)
    for x in _batches(layout, dtype, seed=1)[:2]:  # 13 images: a chunk of 12, and one of 1
        x = x[:12]
        engine.prepare(x)
        expected = engine._buffer(x.shape[0]).images.clone()  # (G, f, C, H, W) view of what prepare() wrote
        dst = torch.full_like(expected, float("nan"))
        nchw = x.permute(0, 3, 1, 2) if layout == "NHWC" else x
        groups = fold_normalised(nchw, dst, *engine._affine[dtype == torch.uint8])
        assert groups == -(-x.shape[0] // 3)
        torch.testing.assert_close(dst[:groups], expected[:groups], atol=1e-6, rtol=0)  # float32, FMA or not


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
@pytest.mark.parametrize("backend", ["torch", "compile"])
def test_cuda_pipeline_gives_each_batch_its_logits_in_order(model, backend):
    engine = Engine(model, backend=backend, device="cuda", dtype=torch.float32, max_batch=8)
    for layout, dtype in (("NHWC", torch.uint8), ("NCHW", torch.float32)):
        batches = _batches(layout, dtype)
        streamed = list(engine.predict_stream(batches))
        assert [s.shape for s in streamed] == [(n, 5) for n in SIZES]
        for got, x in zip(streamed, batches, strict=True):
            assert got.device.type == "cpu" and got.dtype == torch.float32
            # the same engine's synchronous path: prepare() then the backend, chunk by chunk
            want = [torch.empty(0, 5)]
            for start in range(0, x.shape[0], engine.max_batch):
                folded, n = engine.prepare(x[start:start + engine.max_batch])
                logits = engine.backend.forward_folded(folded)
                want.append(logits.reshape(-1, 5)[:n].float().cpu())
            torch.testing.assert_close(got, torch.cat(want), atol=1e-4, rtol=0)
        assert torch.equal(engine.predict(batches[3]), streamed[3])


@cuda
def test_cuda_pipeline_in_float16_and_from_device_tensors(model):
    engine = Engine(model, backend="torch", device="cuda", dtype=torch.float16, max_batch=8)
    batches = _batches()
    on_device = [x.cuda() for x in batches]
    pinned = [x.pin_memory() for x in batches]  # uploaded without the staging copy
    inputs = batches + on_device + pinned
    for got, x in zip(engine.predict_stream(inputs), batches * 3, strict=True):
        ref = reference(model, x.permute(0, 3, 1, 2))
        if x.shape[0]:
            assert ((got - ref).norm() / ref.norm()).item() < 1e-2  # fp16 activations
