"""Shared fixtures. Test modules that train or trace tiny models use
`pytestmark = pytest.mark.usefixtures("one_thread")`."""

from __future__ import annotations

import os

# The tests run Triton kernels on CPU tensors in Triton's interpreter. The variable is read when
# triton.language is imported (by torch.compile's modules too), so it is set here, before any test module.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def one_thread():
    """Run the test on one torch intra-op thread: for tiny models on the shared 2-core machine, more
    threads only add contention (5 training steps: 0.06 s vs 1.5 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
