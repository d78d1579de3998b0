import json
import struct

import pytest
import torch

from foldedcnn.checkpoint import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from foldedcnn.folded import FoldedModel


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = FoldedModel.from_zoo("noscope-coral", 4).eval()
    path = save_checkpoint(tmp_path / "coral.safetensors", model, class_names=["empty", "object"],
                           extra={"metrics": {"val_top1": 97.5}})
    return model, path


def test_round_trip_gives_identical_outputs(saved):
    model, path = saved
    ck = load_checkpoint(path, fold=4, input_shape=(3, 50, 50))
    x = torch.randn(9, 3, 50, 50)
    assert torch.equal(model(x), ck.model(x))
    assert not ck.model.training
    assert ck.class_names == ["empty", "object"]
    assert ck.meta["metrics"] == {"val_top1": 97.5}
    assert ck.meta["widths"] == [32, 32, 256, 8]
    assert ck.meta["architecture"] == {"kind": "zoo", "name": "noscope-coral", "width_mult": None, "align": 1}


def test_wrong_fold_or_input_is_refused(saved):
    _, path = saved
    with pytest.raises(CheckpointError, match="fold=4 model, but fold=2"):
        load_checkpoint(path, fold=2)
    with pytest.raises(CheckpointError, match=r"expects input \(3, 50, 50\)"):
        load_checkpoint(path, input_shape=(3, 32, 32))


def test_truncated_file_is_refused(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated|not a readable"):
        load_checkpoint(path)


def test_tampered_weights_are_refused(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # flip a byte of the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path)


def test_foreign_and_missing_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_metadata(tmp_path / "nope.safetensors")
    pickle_like = tmp_path / "model.pt"
    pickle_like.write_bytes(b"\x80\x04\x95 not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(pickle_like)
    # a valid safetensors file without our metadata
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\0\0")
    with pytest.raises(CheckpointError, match="without foldedcnn metadata"):
        load_checkpoint(plain)


def test_folded_model_checks_image_shape():
    m = FoldedModel.from_zoo("game-apex-squad-count", 2)
    assert m(torch.randn(5, 3, 19, 25)).shape == (5, 22)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, 19, 25\)"):
        m(torch.randn(5, 3, 25, 19))
