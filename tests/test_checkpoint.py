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
    assert ck.meta["architecture"] == {"kind": "zoo", "name": "noscope-coral", "width_mult": None, "align": 8}


@pytest.mark.parametrize("recorded", [None, 1], ids=["align-absent", "align-1"])
def test_checkpoint_of_paper_widths_written_before_align_8_still_loads(tmp_path, recorded):
    # checkpoints made before tensor-core widths were the default record align 1, or no align at all
    old = FoldedModel.from_zoo("noscope-coral", 2, align=1).eval()
    path = save_checkpoint(tmp_path / "old.safetensors", old)

    def as_before(meta):
        arch = {k: v for k, v in meta["architecture"].items() if k != "align"}
        return json.dumps({**meta, "architecture": arch if recorded is None else {**arch, "align": recorded}})

    _rewrite_metadata(path, as_before)
    ck = load_checkpoint(path)
    assert ck.meta["widths"] == [22, 22, 181, 4]
    x = torch.randn(5, 3, 50, 50)
    assert torch.equal(ck.model(x), old(x))


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


def _rewrite_metadata(path, edit):
    """Re-save `path` with the same tensors and metadata changed by `edit(meta) -> str`."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["foldedcnn"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(path), metadata={"foldedcnn": edit(meta)})


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda m: "{not json", "damaged metadata"),
        (lambda m: json.dumps({**m, "fold": 2}), "do not fit"),
        (lambda m: json.dumps({**m, "input_shape": [3, 32, 32]}), "edited after saving"),
        (lambda m: json.dumps({**m, "num_classes": 3}), "edited after saving"),
        (lambda m: json.dumps({**m, "class_names": ["a", "b", "c"]}), "3 class names"),
        (lambda m: json.dumps({**m, "version": 99}), "expected 'foldedcnn-checkpoint' v1"),
    ],
    ids=["json", "fold", "input", "classes", "names", "version"],
)
def test_tampered_metadata_is_refused(saved, edit, message):
    _, path = saved
    _rewrite_metadata(path, edit)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_training_config_and_metrics_travel_in_the_checkpoint(tmp_path):
    model = FoldedModel.from_zoo("game-sot-coin-count", 3)
    norm = {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}
    extra = {"training": {"lr": 0.001, "epochs": 5}, "metrics": {"epoch": 5, "val_top1": 91.25}}
    path = save_checkpoint(tmp_path / "c.safetensors", model, normalization=norm, extra=extra)
    meta = read_metadata(path)
    assert meta["training"] == extra["training"] and meta["metrics"] == extra["metrics"]
    assert meta["normalization"] == norm and meta["fold"] == 3 and meta["input_shape"] == [3, 17, 40]
    assert meta["class_names"] == [str(i) for i in range(15)]
