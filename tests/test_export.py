"""Served ONNX graphs and Triton repositories: any batch, raw frames in, the Engine's logits out."""

import re

import onnx
import onnxruntime as ort
import pytest
import torch

from foldedcnn.checkpoint import checkpoint_name, save_checkpoint
from foldedcnn.cli import main
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine
from foldedcnn.infer.triton_repository import preferred_batch_sizes, triton_config

pytestmark = pytest.mark.usefixtures("one_thread")

NORM = {"mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}
TRAINING = {"model": "noscope-coral", "data": "vtest:runs/demo/vtest", "fold": 4}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = FoldedModel.from_zoo("noscope-coral", 4).eval()
    path = tmp_path_factory.mktemp("ckpt") / "best.safetensors"
    return save_checkpoint(path, model, class_names=["empty", "person"], normalization=NORM,
                           extra={"training": TRAINING})


@pytest.fixture(scope="module")
def engine(checkpoint):
    return Engine(checkpoint, backend="torch", device="cpu", dtype="float32")


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _frames(batch, seed):
    return torch.randint(0, 256, (batch, 50, 50, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


# fp32 graph vs fp32 Engine: same weights and normalisation, only the order of the float32 sums differs
# (ONNX Runtime vs torch convolutions), which moves logits of size ~0.1 by ~1e-7; 1e-5 leaves room.
FP32 = {"atol": 1e-5, "rtol": 1e-4}


@pytest.mark.parametrize("input_format", ["float-nchw", "uint8-nhwc"])
def test_served_onnx_runs_any_batch_and_matches_the_engine(checkpoint, engine, tmp_path, input_format, capsys):
    assert main(["export", str(checkpoint), "--format", "onnx", "--input", input_format, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    path = tmp_path / "vtest-noscope-coral-f4.onnx"  # named after the checkpoint's data, model and fold
    assert f"wrote {path}" in out and "any B >= 1" in out
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props["foldedcnn.name"] == "vtest-noscope-coral-f4" and props["foldedcnn.input_format"] == input_format
    session = _session(path)
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    per_image = [50, 50, 3] if input_format == "uint8-nhwc" else [3, 50, 50]
    assert (inp.name, inp.shape, outp.name, outp.shape) == ("images", ["batch", *per_image], "logits", ["batch", 2])
    for batch in range(1, 10):  # every remainder modulo f = 4, below, at and above one group
        frames = _frames(batch, seed=batch)
        x = frames.numpy() if input_format == "uint8-nhwc" else frames.permute(0, 3, 1, 2).float().div(255).numpy()
        got = torch.from_numpy(session.run(None, {"images": x})[0])
        assert got.shape == (batch, 2)
        torch.testing.assert_close(got, engine.predict(x), **FP32)


def test_fp16_triton_repository_serves_single_frames(checkpoint, engine, tmp_path, capsys):
    assert main(["export", str(checkpoint), "--format", "triton", "--input", "uint8-nhwc", "--precision", "fp16",
                 "--instance-kind", "gpu", "--instances", "2", "--max-batch", "64", "--out", str(tmp_path)]) == 0
    root = tmp_path / "vtest-noscope-coral-f4"
    fields = _pbtxt_fields((root / "config.pbtxt").read_text())
    assert fields["name"] == ['"vtest-noscope-coral-f4"', '"images"', '"logits"']
    assert fields["max_batch_size"] == ["64"] and fields["data_type"] == ["TYPE_UINT8", "TYPE_FP32"]
    assert fields["dims"] == ["[ 50, 50, 3 ]", "[ 2 ]"]
    assert "{ count: 2, kind: KIND_GPU }" in (root / "config.pbtxt").read_text()
    # Triton's classification extension names the classes from the output's label file, one per logit
    assert fields["label_filename"] == ['"labels.txt"'] and (root / "labels.txt").read_text() == "empty\nperson\n"
    proto = onnx.load(root / "1" / "model.onnx")
    assert {t.data_type for t in proto.graph.initializer if t.name.startswith("network.")} == {onnx.TensorProto.FLOAT16}
    session = _session(root / "1" / "model.onnx")
    for batch in (1, 5, 9):
        frames = _frames(batch, seed=100 + batch).numpy()
        got = torch.from_numpy(session.run(None, {"images": frames})[0])
        # fp16 weights and activations (unit roundoff 4.9e-4) against the fp32 engine: logits of size ~0.1 move
        # by up to ~1e-3 through the four layers' sums
        torch.testing.assert_close(got, engine.predict(frames), atol=5e-3, rtol=2e-2)


def _pbtxt_fields(text: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for key, value in re.findall(r"^\s*([a-z_]+):\s*(.+?)\s*$", text, flags=re.M):
        fields.setdefault(key, []).append(value)
    return fields


def test_triton_config_batches_any_size_and_prefers_multiples_of_f():
    model = FoldedModel.from_zoo("game-apex-squad-count", 3)
    text = triton_config(model, "apex", max_batch_size=1000)
    fields = _pbtxt_fields(text)
    assert fields["platform"] == ['"onnxruntime_onnx"'] and fields["max_batch_size"] == ["1000"]
    assert fields["data_type"] == ["TYPE_FP32", "TYPE_FP32"] and fields["dims"] == ["[ 3, 19, 25 ]", "[ 22 ]"]
    assert fields["preferred_batch_size"] == ["[ 63, 255, 999 ]"]
    assert fields["max_queue_delay_microseconds"] == ["100"]
    assert "instance_group" not in text  # auto: Triton's default placement
    assert "KIND_CPU" in triton_config(model, "apex", instance_kind="cpu")
    assert preferred_batch_sizes(1, 4) == [] and preferred_batch_sizes(1024, 1) == [64, 256, 1024]


def test_checkpoint_names_come_from_data_model_and_fold():
    zoo = {"kind": "zoo", "name": "noscope-coral"}
    assert checkpoint_name({"architecture": zoo, "fold": 4, "training": TRAINING}) == "vtest-noscope-coral-f4"
    assert checkpoint_name({"architecture": zoo, "fold": 1}) == "noscope-coral-f1"
    game = {"kind": "zoo", "name": "game-lol-gold-int"}
    training = {"data": "game-lol-gold-int?n_train=6000"}
    assert checkpoint_name({"architecture": game, "fold": 2, "training": training}) == "game-lol-gold-int-f2"
    plan = {"kind": "plan", "source": {"factory": "my.nets:small_cnn", "kwargs": {}}}
    training = {"model": "", "data": "npz:/data/cars v2"}
    assert checkpoint_name({"architecture": plan, "fold": 3, "training": training}) == "cars-v2-small_cnn-f3"


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", "no-such-model", "--format", "onnx", "--out", str(tmp_path)]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "best.safetensors"), "--format", "onnx", "--out", str(tmp_path)]) == 2
    assert "best.safetensors does not exist" in capsys.readouterr().err

