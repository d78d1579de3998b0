import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.cli import main
from foldedcnn.folded import FoldedModel
from foldedcnn.infer.triton_repository import triton_config


def test_exported_onnx_matches_torch_at_several_batches(tmp_path):
    torch.manual_seed(0)
    model = FoldedModel.from_zoo("game-apex-squad-count", 3).eval()
    assert main(["export", "game-apex-squad-count", "--fold", "3", "--format", "onnx", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "game-apex-squad-count-f3.onnx").stat().st_size > 0  # zoo name: untrained weights
    ckpt = save_checkpoint(tmp_path / "apex.safetensors", model, normalization={"mean": [0.1] * 3, "std": [0.2] * 3})
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(tmp_path)]) == 0
    path = tmp_path / "apex-f3.onnx"
    proto = onnx.load(path)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["foldedcnn.fold"] == "3" and '"mean": [0.1, 0.1, 0.1]' in props["foldedcnn.normalization"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape[1:], out.name, out.shape[1:]) == ("images", [3, 19, 25], "logits", [22])
    for batch in (3, 12):
        x = torch.randn(batch, 3, 19, 25)
        got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
        with torch.no_grad():
            torch.testing.assert_close(got, model(x), atol=1e-4, rtol=0)
    with pytest.raises(Exception):  # noqa: B017  (onnxruntime's own error type) not a multiple of f
        session.run(None, {"images": np.zeros((4, 3, 19, 25), np.float32)})


def _pbtxt_fields(text: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for key, value in re.findall(r"^\s*([a-z_]+):\s*(.+?)\s*$", text, flags=re.M):
        fields.setdefault(key, []).append(value)
    return fields


def test_triton_repository_layout_and_config(tmp_path):
    assert main(["export", "noscope-coral", "--fold", "3", "--format", "triton", "--out", str(tmp_path),
                 "--max-batch", "1000"]) == 0
    root = tmp_path / "noscope-coral-f3"
    assert (root / "1" / "model.onnx").stat().st_size > 0
    fields = _pbtxt_fields((root / "config.pbtxt").read_text())
    assert fields["name"] == ['"noscope-coral-f3"', '"images"', '"logits"']
    assert fields["platform"] == ['"onnxruntime_onnx"']
    assert fields["max_batch_size"] == ["1002"]  # 1000 rounded up to a multiple of 3
    assert fields["data_type"] == ["TYPE_FP32", "TYPE_FP32"]
    assert fields["dims"] == ["[ 3, 50, 50 ]", "[ 2 ]"]
    preferred = [int(v) for v in re.findall(r"\d+", fields["preferred_batch_size"][0])]
    assert preferred == [66, 258, 1002] and all(b % 3 == 0 for b in preferred)
    assert fields["max_queue_delay_microseconds"] == ["100"]


def test_triton_config_for_fold_one_keeps_sizes():
    text = triton_config(FoldedModel.from_zoo("noscope-coral", 1), "m", 1024)
    assert "max_batch_size: 1024" in text and "preferred_batch_size: [ 64, 256, 1024 ]" in text


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", "no-such-model", "--format", "onnx", "--out", str(tmp_path)]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
