"""The triton backend compiled by Triton for a real GPU, every specialized zoo model at f = 1..4, at real input sizes.

Skipped without CUDA (CI has none). The interpreter tests (test_infer_triton.py) check the kernels' arithmetic;
these check what only a GPU shows: Triton's GPU compiler accepts every variant and the compiled code gives the
same logits. Run on a GPU machine without the interpreter:

    TRITON_INTERPRET=0 python -m pytest tests/test_infer_triton_cuda.py

Tolerance: fp16 activations round to 11 bits at every layer (~5e-4 relative each), and the deepest zoo chain
has 8 layers: 2e-2 of the logits' norm, against fp32 eager torch of the same weights.
"""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from foldedcnn import unfold_logits
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine
from foldedcnn.models import list_models

if not torch.cuda.is_available():
    pytest.skip("needs CUDA", allow_module_level=True)
pytest.importorskip("triton")
if os.environ.get("TRITON_INTERPRET") == "1":
    pytest.skip("run with TRITON_INTERPRET=0: the interpreter takes CPU tensors only", allow_module_level=True)

CUDA = torch.device("cuda")
SPECIALIZED = [m for m in list_models() if not m.startswith("resnet")]
BATCH = 203  # not a multiple of 2, 3 or 4: the last group is partial


def zoo(name: str, fold: int) -> FoldedModel:
    torch.manual_seed(fold)
    model = FoldedModel.from_zoo(name, fold)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.uniform_(m.bias, -0.5, 0.5)  # logits far from zero, so that a wrong kernel shows
    return model.eval()


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.float().cpu() - ref.cpu()).norm() / ref.norm()).item()


def test_every_specialized_model_is_listed():
    assert len(SPECIALIZED) == 10


@pytest.mark.parametrize("fold", [1, 2, 3, 4])
@pytest.mark.parametrize("name", SPECIALIZED)
def test_compiled_kernels_match_fp32_torch(name, fold):
    model = zoo(name, fold)
    engine = Engine(model, backend="triton", device=CUDA, dtype=torch.float16, max_batch=BATCH)
    reference = Engine(model, backend="torch", device=CUDA, dtype=torch.float32, max_batch=BATCH)
    assert engine.backend_name == "triton"
    c, h, w = model.input_shape
    images = torch.randint(0, 256, (BATCH, h, w, c), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    expected = reference.predict(images)
    assert expected.abs().max() > 0.1
    # end-to-end: raw uint8 images, folded and normalised inside the first kernel
    assert relative_error(engine.predict(images), expected) < 2e-2
    # kernel mode: an already folded, normalised fp16 buffer
    x = images.permute(0, 3, 1, 2).float().div(255).to(CUDA)[: BATCH - BATCH % fold]
    groups = x.reshape(-1, fold * c, h, w)
    mean = torch.tensor(engine.normalization["mean"], device=CUDA).repeat(fold).view(1, -1, 1, 1)
    std = torch.tensor(engine.normalization["std"], device=CUDA).repeat(fold).view(1, -1, 1, 1)
    folded = ((groups - mean) / std).half().contiguous(memory_format=torch.channels_last)
    got = unfold_logits(engine.backend.forward_folded(folded), fold, len(x))
    assert relative_error(got, expected[: len(x)]) < 2e-2
