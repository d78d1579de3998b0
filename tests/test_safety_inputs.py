"""Careless input ends in one line naming the problem and the fix (exit 2), never a traceback or a silent
wrong answer: training settings that diverge, empty or damaged data, mistyped data folders, bad export
options, a disk that fills up during export."""

import errno
import json
import pathlib

import numpy as np
import pytest
import torch

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.cli import main
from foldedcnn.data.store import save_split, write_meta
from foldedcnn.folded import FoldedModel

pytestmark = pytest.mark.usefixtures("one_thread")


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture
def data(tmp_path):
    """A tiny 2-class 50x50 npz data set."""
    d = tmp_path / "data"
    rng = np.random.default_rng(0)
    for split, n in (("train", 32), ("val", 8), ("test", 8)):
        save_split(d, split, rng.integers(0, 256, (n, 3, 50, 50), dtype=np.uint8), np.arange(n) % 2)
    write_meta(d, {"class_names": ["empty", "person"]})
    return d


def train(data, out, *extra):
    return main(["train", "--model", "noscope-coral", "--data", f"npz:{data}", "--epochs", "2", "--batch", "8",
                 "--out", str(out), "--no-progress", *extra])


def test_a_diverging_run_stops_and_never_saves_a_nan_model(data, tmp_path, capsys):
    assert train(data, tmp_path / "run", "--lr", "1e12") == 2
    one_line_error(capsys, "training diverged in epoch", "lower the learning rate (now 1e+12)")
    best = tmp_path / "run" / "best.safetensors"
    if best.exists():  # an epoch before the divergence may have been saved: it must be finite
        from foldedcnn.checkpoint import load_checkpoint

        assert all(bool(torch.isfinite(p).all()) for p in load_checkpoint(best).model.parameters())


@pytest.mark.parametrize("flags,needle", [(["--lr", "-0.01"], "learning rate must be a finite number > 0"),
                                          (["--lr", "nan"], "learning rate must be a finite number > 0"),
                                          (["--weight-decay", "-1"], "weight decay must be a finite number >= 0")])
def test_bad_optimizer_settings_are_one_line(data, tmp_path, capsys, flags, needle):
    assert train(data, tmp_path / "run", *flags) == 2
    one_line_error(capsys, needle)
    assert not (tmp_path / "run").exists()


def test_an_empty_train_split_is_an_error_not_a_nan_normalisation(data, capsys, tmp_path):
    save_split(data, "train", np.zeros((0, 3, 50, 50), np.uint8), np.zeros(0, np.int64))
    assert train(data, tmp_path / "run") == 2
    one_line_error(capsys, "the train split is empty")
    assert not (tmp_path / "run" / "best.safetensors").exists()


def test_labels_outside_the_class_names_are_refused(data, capsys):
    save_split(data, "test", np.zeros((4, 3, 50, 50), np.uint8), np.array([0, 1, 5, 1]))
    ckpt = save_checkpoint(data.parent / "m.safetensors", FoldedModel.from_zoo("noscope-coral", 1))
    assert main(["eval", str(ckpt), "--data", f"npz:{data}"]) == 2
    one_line_error(capsys, "labels range over [0, 5] but there are 2 class names")


@pytest.mark.parametrize("damage", ["truncated", "not-a-zip", "meta"])
def test_a_damaged_data_set_is_one_line(data, capsys, damage):
    if damage == "truncated":
        raw = (data / "train.npz").read_bytes()
        (data / "train.npz").write_bytes(raw[: len(raw) // 2])
    elif damage == "not-a-zip":
        (data / "train.npz").write_text("hello")
    else:
        (data / "meta.json").write_text("{not json")
    assert train(data, data.parent / "run") == 2
    one_line_error(capsys, "damaged", "make it again with `foldedcnn data")


def test_a_mistyped_data_folder_is_an_error_and_is_not_created(tmp_path, capsys):
    typo = tmp_path / "typo_dir"
    assert main(["eval", "nothing.safetensors", "--data", f"vtest:{typo}"]) == 2
    one_line_error(capsys, "does not exist", f"foldedcnn data video vtest --out {typo}")
    assert not typo.exists()


def test_metadata_with_a_removed_key_is_one_line(tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from foldedcnn.checkpoint import checkpoint_digest

    path = save_checkpoint(tmp_path / "m.safetensors", FoldedModel.from_zoo("noscope-coral", 2))
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = json.loads(f.metadata()["foldedcnn"]), {k: f.get_tensor(k) for k in f.keys()}
    del meta["input_shape"]
    meta["sha256"] = checkpoint_digest(tensors, meta)
    save_file(tensors, str(path), metadata={"foldedcnn": json.dumps(meta)})
    assert main(["export", str(path), "--format", "onnx", "--out", str(tmp_path / "x")]) == 2
    one_line_error(capsys, "'input_shape' is a required property")


def test_export_max_batch_zero_is_refused(tmp_path, capsys):
    assert main(["export", "noscope-coral", "--format", "triton", "--out", str(tmp_path), "--max-batch", "0"]) == 2
    one_line_error(capsys, "max batch size must be an integer >= 1, got 0")
    assert not list(tmp_path.iterdir())


def test_export_to_a_full_disk_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    import onnx

    from foldedcnn.infer import onnx_export

    tiny = onnx.helper.make_model(onnx.helper.make_graph(  # the real graph takes seconds to export; any will do
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])]))
    monkeypatch.setattr(onnx_export, "served_onnx_bytes", lambda *args: tiny.SerializeToString())
    real = pathlib.Path.write_bytes

    def full_disk(self, data):
        real(self, data[: len(data) // 3])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_disk)
    assert main(["export", "noscope-coral", "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 2
    one_line_error(capsys, "No space left on device", "export again")
    assert not list((tmp_path / "onnx").iterdir())  # neither the .onnx nor its temporary
