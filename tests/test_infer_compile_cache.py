import pytest
import torch
from infer_helpers import reference, tiny_model

from foldedcnn.infer import Engine
from foldedcnn.infer.backends import _compile_cache


@pytest.fixture
def compile_cache(tmp_path, monkeypatch):
    """foldedcnn's cache dir in tmp_path; inductor's caches go under it (as they do by default)."""
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    monkeypatch.setattr(_compile_cache, "_USER_DIR", None)
    monkeypatch.delenv(_compile_cache.ENV, raising=False)
    _forget_compiled_code()  # graphs compiled by earlier tests would be reused (dynamo guards do not pin a module)
    yield tmp_path / _compile_cache.SUBDIR
    torch._dynamo.reset()


def _forget_compiled_code():
    """What a new process starts with: no compiled graphs or loaded kernels in memory (the disk cache stays)."""
    from torch._inductor.codecache import PyCodeCache

    torch._dynamo.reset()
    PyCodeCache.cache_clear(purge=False)


@pytest.mark.slow
def test_compile_cache_persists_and_a_damaged_one_is_rebuilt_with_a_warning(compile_cache):
    model = tiny_model(fold=2, classes=4)
    x = torch.randint(0, 256, (6, 8, 8, 3), dtype=torch.uint8)
    expected = reference(model, x.permute(0, 3, 1, 2))
    torch.testing.assert_close(Engine(model, backend="compile", device="cpu", max_batch=8).predict(x), expected,
                               atol=1e-4, rtol=0)
    generated = list(compile_cache.rglob("*.py"))
    assert generated, "inductor wrote no compiled graph under foldedcnn's cache dir"

    _forget_compiled_code()
    for path in generated:  # damaged cache files: every generated graph module is garbage (the .so files they
        path.write_text("garbage")  # load stay, as this process has them mapped)
    with pytest.warns(RuntimeWarning, match="cache may be damaged: emptying it and recompiling"):
        engine = Engine(model, backend="compile", device="cpu", max_batch=8)
        got = engine.predict(x)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    assert all("garbage" not in p.read_text(errors="ignore") for p in compile_cache.rglob("*.py"))
