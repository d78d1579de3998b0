"""The Engine from many threads, and what it refuses: float images outside [0, 1], broken models."""

import threading

import numpy as np
import pytest
import torch

from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine, InputRangeError, NonFiniteOutputError

pytestmark = pytest.mark.usefixtures("one_thread")

SIZES = [16, 1, 7, 33, 5]  # per call: a full bucket, a lone image, partial groups, two chunks


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return FoldedModel.from_zoo("noscope-coral", 4).eval()


def test_eight_threads_get_exactly_the_single_thread_logits(model):
    """The engine's buffers are shared; its lock keeps each caller's chunks apart (without it, up to half the
    logits came back wrong in issue #13's trial). The lock is backend-independent, so eager torch is enough."""
    engine = Engine(model, backend="torch", device="cpu", max_batch=16)
    gen = torch.Generator().manual_seed(1)
    work = [[torch.randint(0, 256, (n, 3, 50, 50), dtype=torch.uint8, generator=gen) for n in SIZES]
            for _ in range(8)]
    expected = [[engine.predict(x) for x in calls] for calls in work]  # one thread
    got: list[list[torch.Tensor]] = [[] for _ in work]
    start = threading.Barrier(len(work))

    def worker(t: int) -> None:
        start.wait()
        got[t] = [engine.predict(x) for x in work[t]]

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(len(work))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t in range(len(work)):
        for want, have in zip(expected[t], got[t], strict=True):
            assert torch.equal(want, have)  # same chunks through the same kernels: bit-identical


def test_float_images_outside_zero_one_are_refused_with_the_fix(model):
    engine = Engine(model, backend="torch", device="cpu")
    pixels = np.random.default_rng(0).integers(0, 256, (3, 3, 50, 50)).astype(np.float32)
    with pytest.raises(InputRangeError, match=r"must be in \[0, 1\].*divide 0..255 pixel values by 255"):
        engine.predict(pixels)
    torch.testing.assert_close(engine.predict(pixels / 255), engine.predict(pixels.astype(np.uint8)),
                               rtol=1e-5, atol=1e-5)
    edge = np.clip(pixels / 255 + 0.005, None, 1.005).astype(np.float32)  # resampling overshoot is tolerated
    assert engine.predict(edge).shape == (3, 2)


def test_a_model_with_nan_weights_or_non_finite_logits_is_refused(model):
    broken = FoldedModel.from_zoo("noscope-coral", 4).eval()
    with torch.no_grad():
        next(broken.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite weights"):
        Engine(broken, backend="torch", device="cpu")
    overflowing = FoldedModel.from_zoo("noscope-coral", 4).eval()
    with torch.no_grad():
        last = [m for m in overflowing.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.fill_(3e38)  # finite, but the logits overflow to infinity
    engine = Engine(overflowing, backend="torch", device="cpu")
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite logits for 5 of 5 images"):
        engine.predict(torch.randint(0, 256, (5, 3, 50, 50), dtype=torch.uint8))
