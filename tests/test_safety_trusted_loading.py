"""A checkpoint never runs code its author chose unless the user says so (trust_code / --trust-code).

The attack of issue #13: a copy of a real checkpoint whose architecture names
{"factory": "subprocess:call", "kwargs": {"args": ["touch", "PWNED"]}}. A careless editor fails the
SHA-256; a careful one recomputes it (the algorithm is public), so the trust gate is what must hold.
"""

import json
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from video_clips import write_square_clip

from foldedcnn import create_model, fold_model
from foldedcnn.checkpoint import checkpoint_digest, load_checkpoint, save_checkpoint
from foldedcnn.cli import main
from foldedcnn.data.store import save_split, write_meta
from foldedcnn.errors import UntrustedCodeError
from foldedcnn.infer import Engine

pytestmark = pytest.mark.usefixtures("one_thread")
CANARY = "foldedcnn_canary_module"


@pytest.fixture
def plan_checkpoint(tmp_path):
    """A real fold_model checkpoint of noscope-coral (f=2) whose source is the zoo: loads with no import."""
    torch.manual_seed(0)
    folded = fold_model(create_model("noscope-coral", 1), 2, torch.rand(1, 3, 50, 50), source={"zoo": "noscope-coral"})
    return save_checkpoint(tmp_path / "coral-f2.safetensors", folded.eval(), class_names=["empty", "person"],
                           extra={"roi": [0, 0, 50, 50]})


def forge(path, source, *, resign=True):
    """Rewrite `path` with its architecture's source replaced; `resign` recomputes the SHA-256."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["foldedcnn"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["architecture"]["source"] = source
    if resign:
        meta["sha256"] = checkpoint_digest(tensors, meta)
    save_file(tensors, str(path), metadata={"foldedcnn": json.dumps(meta)})
    return path


def pwn(tmp_path):
    return {"factory": "subprocess:call", "kwargs": {"args": ["touch", str(tmp_path / "PWNED")]}}


@pytest.fixture
def canary(tmp_path, monkeypatch):
    """A module on sys.path that leaves a file when imported; `make()` builds the real original."""
    (tmp_path / f"{CANARY}.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(tmp_path / 'IMPORTED')!r}).touch()\n"
        "def make():\n"
        "    from foldedcnn import create_model\n"
        "    return create_model('noscope-coral', 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / "IMPORTED"
    sys.modules.pop(CANARY, None)


def test_zoo_and_zoo_plan_checkpoints_load_without_trust(plan_checkpoint):
    ck = load_checkpoint(plan_checkpoint)
    assert ck.model.plan.fold == 2 and ck.meta["architecture"]["source"] == {"zoo": "noscope-coral"}


def test_an_edited_source_fails_the_sha256_and_runs_nothing(plan_checkpoint, tmp_path):
    forge(plan_checkpoint, pwn(tmp_path), resign=False)
    with pytest.raises(Exception, match="SHA-256"):
        load_checkpoint(plan_checkpoint, trust_code=True)  # the hash is checked before anything is built
    assert not (tmp_path / "PWNED").exists()


def test_a_re_signed_factory_is_refused_without_trust_naming_module_and_flag(plan_checkpoint, tmp_path, canary):
    forge(plan_checkpoint, {"factory": f"{CANARY}:make"})
    with pytest.raises(UntrustedCodeError, match=rf"import module '{CANARY}'.*trust_code=True \(CLI: --trust-code\)"):
        load_checkpoint(plan_checkpoint)
    assert CANARY not in sys.modules and not canary.exists()
    with pytest.raises(UntrustedCodeError):
        Engine(plan_checkpoint, backend="torch")
    assert CANARY not in sys.modules and not canary.exists()
    # the user's explicit opt-in is the only thing between the file and the import
    ck = load_checkpoint(plan_checkpoint, trust_code=True)
    assert CANARY in sys.modules and canary.exists() and ck.model.plan.fold == 2


def test_leaf_modules_named_by_the_file_are_not_imported_without_trust(plan_checkpoint, tmp_path, canary):
    with safe_open(str(plan_checkpoint), framework="pt") as f:
        meta = json.loads(f.metadata()["foldedcnn"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["architecture"]["plan"]["leaf_modules"] = [f"{CANARY}:make"]
    meta["sha256"] = checkpoint_digest(tensors, meta)
    save_file(tensors, str(plan_checkpoint), metadata={"foldedcnn": json.dumps(meta)})
    with pytest.raises(UntrustedCodeError, match=CANARY):
        load_checkpoint(plan_checkpoint)
    assert CANARY not in sys.modules and not canary.exists()


def _vtest_like_data(tmp_path):
    d = tmp_path / "data"
    rng = np.random.default_rng(0)
    save_split(d, "test", rng.integers(0, 256, (6, 3, 50, 50), dtype=np.uint8), np.arange(6) % 2)
    write_meta(d, {"class_names": ["empty", "person"]})
    return f"npz:{d}"


def test_every_command_refuses_the_malicious_checkpoint_in_one_line(plan_checkpoint, tmp_path, capsys):
    forge(plan_checkpoint, pwn(tmp_path))
    clip = write_square_clip(tmp_path / "clip.mp4", 8)
    commands = {
        "eval": ["eval", str(plan_checkpoint), "--data", _vtest_like_data(tmp_path)],
        "calibrate": ["calibrate", str(plan_checkpoint), "--data", _vtest_like_data(tmp_path), "--split", "test",
                      "--backend", "torch"],
        "export": ["export", str(plan_checkpoint), "--format", "onnx", "--out", str(tmp_path / "onnx")],
        "run": ["run", str(plan_checkpoint), str(clip), "--out", str(tmp_path / "labels"), "--backend", "torch",
                "--no-progress"],
    }
    for name, argv in commands.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, name
        assert "import module 'subprocess'" in err and "--trust-code" in err, name
    with pytest.raises(UntrustedCodeError):
        Engine(plan_checkpoint, backend="torch")
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "onnx").exists() and not list((tmp_path / "labels").glob("*.csv"))


def test_the_user_s_own_model_is_calibrated_with_trust_code(plan_checkpoint, tmp_path, canary, capsys):
    forge(plan_checkpoint, {"factory": f"{CANARY}:make"})  # as `train --module` writes it
    argv = ["calibrate", str(plan_checkpoint), "--data", _vtest_like_data(tmp_path), "--split", "test",
            "--backend", "torch"]
    assert main(argv) == 2 and "--trust-code" in capsys.readouterr().err
    assert not canary.exists()
    assert main([*argv, "--trust-code"]) == 0
    assert "stored in the checkpoint" in capsys.readouterr().out
    assert "calibration" in load_checkpoint(plan_checkpoint, trust_code=True).meta
