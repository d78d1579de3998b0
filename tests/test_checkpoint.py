import json
import struct

import pytest
import torch

from foldedcnn import FoldedCNNError
from foldedcnn.checkpoint import (
    CheckpointError,
    checkpoint_digest,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    tensors_digest,
    update_metadata,
)
from foldedcnn.folded import FoldedModel
from foldedcnn.models import create_model
from foldedcnn.transform import fold_model


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
    assert ck.meta["architecture"] == {"kind": "zoo", "name": "noscope-coral", "width_mult": None, "align": 8,
                                       "block_of": 1, "min_block": 8, "num_classes": 2}


@pytest.mark.parametrize("recorded", [None, 1], ids=["align-absent", "align-1"])
def test_checkpoint_of_paper_widths_written_before_align_8_still_loads(tmp_path, recorded):
    # checkpoints made before tensor-core widths were the default record align 1, or no align at all
    old = FoldedModel.from_zoo("noscope-coral", 2, align=1).eval()
    path = save_checkpoint(tmp_path / "old.safetensors", old)

    def as_before(meta):
        arch = {k: v for k, v in meta["architecture"].items() if k != "align"}
        return {**meta, "architecture": arch if recorded is None else {**arch, "align": recorded}}  # re-signed

    _rewrite_metadata(path, as_before)
    ck = load_checkpoint(path)
    assert ck.meta["widths"] == [22, 22, 181, 4]
    x = torch.randn(5, 3, 50, 50)
    assert torch.equal(ck.model(x), old(x))


@pytest.mark.parametrize("kind", ["zoo", "plan"])
def test_checkpoint_written_before_min_block_still_loads_with_its_widths(tmp_path, kind):
    """Game models at f = 4 had 16 channels in their last conv (4 per image) before min_block gave them 32: a
    file that records no min_block rebuilds with none, and one that records it with it."""
    if kind == "zoo":
        old = FoldedModel.from_zoo("game-sot-coin-count", 4, min_block=0).eval()
    else:
        old = fold_model(create_model("game-sot-coin-count"), 4, torch.zeros(1, 3, 17, 40), min_block=0,
                         source={"zoo": "game-sot-coin-count"}).eval()
    path = save_checkpoint(tmp_path / "old.safetensors", old)

    def as_before(meta):
        arch = dict(meta["architecture"])
        if kind == "zoo":
            del arch["min_block"]
        else:
            arch["plan"] = {k: v for k, v in arch["plan"].items() if k != "min_block"}
        return {**meta, "architecture": arch}  # re-signed

    _rewrite_metadata(path, as_before)
    ck = load_checkpoint(path)
    assert ck.meta["widths"][-2:] == [16, 60] and ck.model.identity.min_block == 0
    x = torch.randn(3, 3, 17, 40)
    assert torch.equal(ck.model(x), old(x))
    new = save_checkpoint(tmp_path / "new.safetensors", FoldedModel.from_zoo("game-sot-coin-count", 4))
    assert load_checkpoint(new).meta["widths"][-2:] == [32, 60]


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


def _rewrite_metadata(path, edit, *, resign=True):
    """Re-save `path` with the same tensors and metadata changed by `edit(meta) -> dict | str`; with
    `resign`, a dict gets a fresh SHA-256 (as a careful forger would), so the checks after it are reached."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["foldedcnn"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    new = edit(meta)
    if isinstance(new, dict) and resign:
        new["sha256"] = checkpoint_digest(tensors, new)
    save_file(tensors, str(path), metadata={"foldedcnn": new if isinstance(new, str) else json.dumps(new)})


def test_any_edit_of_the_metadata_fails_the_sha256(saved):
    _, path = saved
    _rewrite_metadata(path, lambda m: {**m, "class_names": ["object", "empty"]}, resign=False)
    with pytest.raises(CheckpointError, match="SHA-256 check: the weights or metadata were modified"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda m: "{not json", "damaged metadata"),
        (lambda m: {**m, "fold": 2}, "do not fit"),
        (lambda m: {**m, "input_shape": [3, 32, 32]}, "edited after saving"),
        (lambda m: {**m, "num_classes": 3}, "2 class names for 3 classes"),
        (lambda m: {**m, "class_names": ["a", "b", "c"]}, "3 class names"),
        (lambda m: {**m, "class_names": ["a", "a"]}, "non-unique"),
        (lambda m: {**m, "version": 99}, "expected 'foldedcnn-checkpoint' v2"),
        (lambda m: {**m, "normalization": {"mean": [0.5] * 3, "std": [0.25, 0.0, 0.25]}},
         r"field normalization.std.1: 0.0 is less than or equal to the minimum of 0"),
        (lambda m: {**m, "normalization": {"mean": [0.5, float("nan"), 0.5], "std": [0.25] * 3}},
         r"field normalization.mean.1: nan is not a finite number"),
        (lambda m: {**m, "normalization": {"mean": [0.5], "std": [0.25]}}, "needs 3 means and stds"),
        (lambda m: {k: v for k, v in m.items() if k != "normalization"}, "'normalization' is a required property"),
        (lambda m: {**m, "fold": "4"}, "field fold: '4' is not of type 'integer'"),
        (lambda m: {**m, "widths": [32, 32, 256, 9]}, r"widths \[32, 32, 256, 9\] do not match"),
        (lambda m: {**m, "architecture": {"kind": "plan", "plan": "garbage", "source": {"zoo": "noscope-coral"}}},
         "field architecture.plan: 'garbage' is not of type 'object'"),
        (lambda m: {**m, "architecture": {"kind": "plan", "plan": {"fold": 4, "input_shape": [3, 50, 50],
                                                                   "num_classes": 2, "layers": [{"x": 1}]},
                                          "source": {"zoo": "noscope-coral"}}}, "stored fold plan is damaged"),
        (lambda m: {**m, "architecture": {"kind": "zoo", "name": "noscope-coral", "width_mult": -1}},
         "field architecture.width_mult"),
    ],
    ids=["json", "fold", "input", "classes", "names", "duplicate-names", "version", "std-zero", "mean-nan",
         "norm-channels", "norm-missing", "fold-type", "widths", "plan-type", "plan-garbage", "width-mult"],
)
def test_tampered_metadata_is_refused_even_when_re_signed(saved, edit, message):
    _, path = saved
    _rewrite_metadata(path, edit)
    with pytest.raises(FoldedCNNError, match=message):
        load_checkpoint(path)


def test_version_1_checkpoints_still_load_with_the_same_checks(saved):
    """Files written before the metadata was hashed (v1: SHA-256 of the weights only) load; their metadata
    still goes through the schema, and the weights through their hash."""
    model, path = saved
    _rewrite_metadata(path, lambda m: {**m, "version": 1, "sha256": tensors_digest(_tensors(path))}, resign=False)
    ck = load_checkpoint(path)
    x = torch.rand(5, 3, 50, 50)
    assert torch.equal(ck.model(x), model(x)) and ck.meta["version"] == 1
    _rewrite_metadata(path, lambda m: {**m, "normalization": {"mean": [0.5] * 3, "std": [0.0] * 3}}, resign=False)
    with pytest.raises(CheckpointError, match=r"normalization.std.\d: 0.0 is less than or equal"):
        load_checkpoint(path)


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_saving_refuses_nan_weights_and_nan_normalization(tmp_path):
    model = FoldedModel.from_zoo("noscope-coral", 1)
    with pytest.raises(CheckpointError, match=r"refusing to save .*normalization.mean.\d: nan is not a finite number"):
        save_checkpoint(tmp_path / "a.safetensors", model, normalization={"mean": [float("nan")] * 3, "std": [1] * 3})
    with torch.no_grad():
        next(model.parameters())[0] = float("nan")
    with pytest.raises(CheckpointError, match="NaN or infinite weights"):
        save_checkpoint(tmp_path / "b.safetensors", model)
    assert not list(tmp_path.iterdir())


def test_training_config_and_metrics_travel_in_the_checkpoint(tmp_path):
    model = FoldedModel.from_zoo("game-sot-coin-count", 3)
    norm = {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}
    extra = {"training": {"lr": 0.001, "epochs": 5}, "metrics": {"epoch": 5, "val_top1": 91.25}}
    path = save_checkpoint(tmp_path / "c.safetensors", model, normalization=norm, extra=extra)
    meta = read_metadata(path)
    assert meta["training"] == extra["training"] and meta["metrics"] == extra["metrics"]
    assert meta["normalization"] == norm and meta["fold"] == 3 and meta["input_shape"] == [3, 17, 40]
    assert meta["class_names"] == [str(i) for i in range(15)]


def test_a_re_signed_checkpoint_with_nan_weights_is_refused(saved):
    from safetensors.torch import save_file

    _, path = saved
    meta, tensors = read_metadata(path), _tensors(path)
    name = sorted(tensors)[0]
    tensors[name].view(-1)[0] = float("nan")
    meta["sha256"] = checkpoint_digest(tensors, meta)
    save_file(tensors, str(path), metadata={"foldedcnn": json.dumps(meta)})
    with pytest.raises(CheckpointError, match=f"holds NaN or infinite weights \\({name}\\)"):
        load_checkpoint(path)


def test_update_metadata_keeps_weights_and_integrity(saved):
    model, path = saved
    before = path.read_bytes()
    meta = update_metadata(path, {"calibration": {"low": 0.1, "high": 0.9}})
    assert meta["calibration"] == {"low": 0.1, "high": 0.9} and meta["metrics"] == {"val_top1": 97.5}
    ck = load_checkpoint(path)  # the SHA-256 over metadata and weights holds again
    assert ck.meta["calibration"]["high"] == 0.9 and ck.meta["sha256"] == read_metadata(path)["sha256"]
    for name, tensor in model.network.state_dict().items():
        assert torch.equal(ck.model.network.state_dict()[name], tensor)
    assert path.read_bytes() != before and not list(path.parent.glob(".*.tmp-*"))
    with pytest.raises(CheckpointError, match="calibration low threshold above the high one"):
        update_metadata(path, {"calibration": {"low": 0.9, "high": 0.1}})
    with pytest.raises(CheckpointError, match="cannot change fold, sha256"):
        update_metadata(path, {"fold": 2, "sha256": "0" * 64})
    with pytest.raises(TypeError):  # not JSON: refused before anything is written
        update_metadata(path, {"calibration": object()})
    assert load_checkpoint(path).meta["calibration"]["low"] == 0.1
