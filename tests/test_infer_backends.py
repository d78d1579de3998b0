import json
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from infer_helpers import reference, tiny_model

from foldedcnn.infer import BACKENDS, BackendUnavailableError, Engine, available_backends
from foldedcnn.infer import _autotune as autotune_mod


@pytest.fixture(scope="module")
def model():
    return tiny_model(fold=2, classes=4)


def test_all_backends_but_the_gpu_ones_available_on_cpu_fp32():
    # triton runs on the CPU only in its interpreter (TRITON_INTERPRET=1): tested in test_infer_triton.py
    gpu_only = {"compile-max", "triton"}
    assert set(available_backends(torch.device("cpu"), torch.float32)) - gpu_only == set(BACKENDS) - gpu_only
    assert "compile-max" not in available_backends(torch.device("cpu"), torch.float32)
    with pytest.raises(BackendUnavailableError, match="max-autotune is for CUDA"):
        Engine(tiny_model(), backend="compile-max", device="cpu")
    assert "onnxruntime" not in available_backends(torch.device("cpu"), torch.bfloat16)


@pytest.mark.parametrize("backend", ["torch", "torch-plain", "onnxruntime", "compile"])
def test_backends_agree_in_fp32(model, backend):
    engine = Engine(model, backend=backend, device="cpu", max_batch=8)
    assert engine.backend_name == backend
    for batch in (13, 5, 8):  # several chunks and a padded last group, then other bucket sizes
        x = torch.randint(0, 256, (batch, 8, 8, 3), dtype=torch.uint8)
        torch.testing.assert_close(engine.predict(x), reference(model, x.permute(0, 3, 1, 2)), atol=1e-4, rtol=0)


def test_compile_in_bfloat16_by_relative_error(model):
    # The GPU path's code (compile, reduced precision, channels-last buffers) run on the CPU, without CUDA graphs.
    engine = Engine(model, backend="compile", device="cpu", dtype=torch.bfloat16, max_batch=8)
    x = torch.rand(11, 3, 8, 8)
    ref = reference(model, x)
    assert ((engine.predict(x) - ref).norm() / ref.norm()).item() < 3e-2


def test_auto_measures_once_and_caches_the_choice(model, tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    engine = Engine(model, backend="auto", device="cpu", max_batch=8)
    table = json.loads((tmp_path / autotune_mod.CACHE_NAME).read_text())
    (key,) = table
    assert table[key]["backend"] == engine.backend_name
    assert set(table[key]["seconds"]) == {"torch", "compile", "onnxruntime"}
    assert key.endswith("|float32|8")
    x = torch.rand(9, 3, 8, 8)
    torch.testing.assert_close(engine.predict(x), reference(model, x), atol=1e-4, rtol=0)

    def must_not_measure(*args, **kwargs):
        raise AssertionError("auto measured again despite a cached choice")

    monkeypatch.setattr(autotune_mod, "seconds_per_batch", must_not_measure)
    assert Engine(model, backend="auto", device="cpu", max_batch=8).backend_name == engine.backend_name


def test_auto_takes_the_fastest_measured_backend_and_times_them_interleaved(model, tmp_path, monkeypatch):
    from foldedcnn.device import interleaved_median_seconds

    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    calls: list[str] = []
    slow = {"torch": 3.0, "compile": 2.0, "onnxruntime": 1.0}

    def fake_timing(runs, device):
        calls.extend(runs)
        return slow
    monkeypatch.setattr(autotune_mod, "seconds_per_batch", fake_timing)
    engine = Engine(model, backend="auto", device="cpu", max_batch=8)
    assert engine.backend_name == "onnxruntime" and set(calls) == set(slow)
    x = torch.rand(5, 3, 8, 8)
    torch.testing.assert_close(engine.predict(x), reference(model, x), atol=1e-4, rtol=0)

    order: list[str] = []
    medians = interleaved_median_seconds({n: (lambda n=n: order.append(n)) for n in "ab"}, "cpu", warmup=1, reps=3)
    assert order == ["a", "b"] * 4 and set(medians) == {"a", "b"}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["torch", "compile", "onnxruntime", "compile-max", "triton"]),
                       st.floats(1e-4, 10.0), min_size=1), st.sets(st.sampled_from(["compile", "compile-max"])))
def test_auto_picks_a_compiling_backend_only_when_clearly_faster(seconds, compiling):
    choice = autotune_mod.pick(seconds, compiling)
    plain = {n: t for n, t in seconds.items() if n not in compiling}
    if choice in compiling:
        assert seconds[choice] == min(seconds.values())
        assert not plain or min(plain.values()) >= autotune_mod.COMPILE_MARGIN * seconds[choice]
    else:
        assert seconds[choice] == min(plain.values())
        assert seconds[choice] < autotune_mod.COMPILE_MARGIN * min(seconds.values())


@pytest.mark.parametrize("compile_s,chosen", [(0.95, "onnxruntime"), (0.5, "compile")])
def test_auto_asks_compile_to_beat_onnxruntime_by_the_margin(model, tmp_path, monkeypatch, compile_s, chosen):
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    timing = {"torch": 3.0, "compile": compile_s, "onnxruntime": 1.0}
    monkeypatch.setattr(autotune_mod, "seconds_per_batch", lambda runs, device: timing)
    assert Engine(model, backend="auto", device="cpu", max_batch=8).backend_name == chosen


def test_a_choice_cached_by_an_older_rule_is_measured_again(model, tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    key = autotune_mod.cache_key(model, torch.device("cpu"), torch.float32, 8)
    (tmp_path / autotune_mod.CACHE_NAME).write_text(json.dumps({key: {"backend": "compile", "seconds": {}}}))
    timing = {"torch": 3.0, "compile": 0.98, "onnxruntime": 1.0}
    monkeypatch.setattr(autotune_mod, "seconds_per_batch", lambda runs, device: timing)
    assert Engine(model, backend="auto", device="cpu", max_batch=8).backend_name == "onnxruntime"
    entry = json.loads((tmp_path / autotune_mod.CACHE_NAME).read_text())[key]
    assert entry == {"backend": "onnxruntime", "seconds": timing, "compile_margin": autotune_mod.COMPILE_MARGIN}


def test_pad_to_max_compiles_one_shape_for_every_call(model):
    engine = Engine(model, backend="compile", device="cpu", max_batch=8, pad_to_max=True)
    for batch in (3, 8, 5, 1):  # the job's calls: full batches and a video's short last one
        x = torch.randint(0, 256, (batch, 8, 8, 3), dtype=torch.uint8)
        torch.testing.assert_close(engine.predict(x), reference(model, x.permute(0, 3, 1, 2)), atol=1e-4, rtol=0)
    assert engine.backend._compiled_shapes == {(4, 6, 8, 8)}  # 8 images at f = 2, folded: one compile
    dynamic = Engine(model, backend="torch", device="cpu", max_batch=8, pad_to_max=True)
    assert dynamic.prepare(torch.rand(3, 3, 8, 8)).images.shape[0] == 2  # exact sizes where shapes are free


def test_static_shape_buckets_are_few_multiples_of_fold():
    from foldedcnn.infer._buffers import bucket_sizes

    assert bucket_sizes(1024, 1, static=True) == [1, 4, 16, 64, 256, 1024]
    assert bucket_sizes(1026, 3, static=True) == [3, 12, 48, 192, 768, 1026]
    assert bucket_sizes(12, 3, static=False) == [3, 6, 12]


def test_onnxruntime_keeps_its_exported_graph_for_the_next_engine(tmp_path, monkeypatch):
    from foldedcnn.infer.backends import _onnx_cache
    from foldedcnn.infer.backends import onnxruntime as ort_backend

    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    model = tiny_model(fold=2, classes=4, seed=1)
    x = torch.randint(0, 256, (7, 3, 8, 8), dtype=torch.uint8)
    first = Engine(model, backend="onnxruntime", device="cpu", max_batch=8).predict(x)
    kept = list((tmp_path / _onnx_cache.SUBDIR).glob("*.onnx"))
    assert len(kept) == 1

    def no_export(model):
        raise AssertionError("exported again despite a kept graph")

    with monkeypatch.context() as m:
        m.setattr(ort_backend, "onnx_bytes", no_export)
        second = Engine(model, backend="onnxruntime", device="cpu", max_batch=8).predict(x)
    assert torch.equal(first, second)
    torch.testing.assert_close(first, reference(model, x), atol=1e-4, rtol=0)

    with torch.no_grad():  # other weights, same architecture: another graph
        model.network[0].bias.add_(1.0)
    changed = Engine(model, backend="onnxruntime", device="cpu", max_batch=8).predict(x)
    torch.testing.assert_close(changed, reference(model, x), atol=1e-4, rtol=0)
    assert len(list((tmp_path / _onnx_cache.SUBDIR).glob("*.onnx"))) == 2


def test_a_damaged_kept_graph_is_exported_again_with_a_warning(tmp_path, monkeypatch):
    from foldedcnn.infer.backends import _onnx_cache

    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    model = tiny_model(fold=2, classes=4, seed=2)
    Engine(model, backend="onnxruntime", device="cpu", max_batch=8)
    (path,) = (tmp_path / _onnx_cache.SUBDIR).glob("*.onnx")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="could not load the kept graph .* exporting the model again"):
        engine = Engine(model, backend="onnxruntime", device="cpu", max_batch=8)
    x = torch.rand(5, 3, 8, 8)
    torch.testing.assert_close(engine.predict(x), reference(model, x), atol=1e-4, rtol=0)
    assert path.stat().st_size > 100  # kept again, whole


def test_only_the_most_recently_used_graphs_are_kept(tmp_path, monkeypatch):
    from foldedcnn.infer.backends import _onnx_cache

    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    models = [tiny_model(fold=2, classes=4, seed=10 + i) for i in range(4)]
    keys = [_onnx_cache.graph_key(m) for m in models]
    assert len(set(keys)) == 4
    folder = tmp_path / _onnx_cache.SUBDIR
    Engine(models[0], backend="onnxruntime", device="cpu", max_batch=8)
    (first,) = folder.glob("*.onnx")
    monkeypatch.setattr(_onnx_cache, "KEEP_BYTES", int(2.5 * first.stat().st_size))  # room for two such graphs
    for m in models[1:]:
        time.sleep(0.02)  # distinct modification times
        Engine(m, backend="onnxruntime", device="cpu", max_batch=8)
    assert {p.stem for p in folder.glob("*.onnx")} == set(keys[2:])
    monkeypatch.setattr(_onnx_cache, "KEEP_BYTES", 0)  # the newest stays, whatever its size
    time.sleep(0.02)
    Engine(models[0], backend="onnxruntime", device="cpu", max_batch=8)
    assert {p.stem for p in folder.glob("*.onnx")} == {keys[0]}


class _Net(torch.nn.Module):
    """(N, 6, 8, 8) -> (N, 8): the fold-2 network of a tiny 4-class model."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(6, 8, 3)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


class _EditedNet(_Net):
    def forward(self, x):  # the same modules and weights, another computation
        return self.conv(x).amax(dim=(2, 3))


_EditedNet.__name__ = _EditedNet.__qualname__ = "_Net"  # prints exactly as _Net does


def test_an_edited_forward_is_another_graph():
    from foldedcnn.folded import FoldedModel
    from foldedcnn.identity import ModelIdentity
    from foldedcnn.infer.backends._onnx_cache import graph_key

    torch.manual_seed(0)
    net = _Net()
    edited = _EditedNet()
    edited.load_state_dict(net.state_dict())
    assert repr(net) == repr(edited)
    a, b = (FoldedModel(n, ModelIdentity(2, (3, 8, 8), 4)).eval() for n in (net, edited))
    assert graph_key(a) != graph_key(b)
