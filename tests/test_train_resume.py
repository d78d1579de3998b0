import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_data import make_set

from foldedcnn.checkpoint import CheckpointError, load_checkpoint
from foldedcnn.folded import FoldedModel
from foldedcnn.train import TrainConfig, train
from foldedcnn.train._state import load_state

EPOCHS = 8
ROOT = Path(__file__).resolve().parents[1]
# a training run of its own process, as a user would start it (and kill it)
SCRIPT = f"""
import sys, torch
from train_data import make_set
from foldedcnn.folded import FoldedModel
from foldedcnn.train import TrainConfig, train
torch.manual_seed(5)
model = FoldedModel.from_zoo("game-apex-squad-count", 2)
data, val = make_set(264, (3, 19, 25), 22), make_set(44, (3, 19, 25), 22, seed=1)
config = TrainConfig(model="game-apex-squad-count", fold=2, epochs={EPOCHS}, batch=22, seed=5,
                     curriculum="on", curriculum_epochs=4, progress=False)
train(model, data, val, config, out=sys.argv[1])
"""
# the same with new generated training images every epoch, drawn by two worker processes
FRESH_SCRIPT = f"""
import sys
from foldedcnn.train import TrainConfig, train_from_config
config = TrainConfig(model="game-apex-squad-count", fold=2, data="game-apex-squad-count?n_train=264&n_val=44",
                     epochs={EPOCHS}, batch=22, seed=5, curriculum="on", curriculum_epochs=4, fresh_data=True,
                     data_workers=2, progress=False)
train_from_config(config, sys.argv[1])
"""


pytestmark = pytest.mark.usefixtures("one_thread")


def start(out: Path, script: str = SCRIPT) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", script, str(out)], env=env)


def committed_epoch(out: Path) -> int:
    try:
        return int(read_state_meta(out / "last.safetensors")["epoch"])
    except (FileNotFoundError, CheckpointError, KeyError):
        return 0


def read_state_meta(path: Path) -> dict:
    from safetensors import safe_open

    if not path.exists():
        raise FileNotFoundError(path)
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["foldedcnn"])


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (Linux /proc), but for resource trackers, which exit on their own."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"resource_tracker" not in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("script", [SCRIPT, pytest.param(FRESH_SCRIPT, marks=pytest.mark.slow)],
                         ids=["fixed-data", "fresh-data"])
def test_resume_after_sigkill_gives_the_same_weights(tmp_path, script):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert start(whole, script).wait(timeout=300) == 0
    proc = start(killed, script)
    deadline = time.monotonic() + 300
    while committed_epoch(killed) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed"
    workers = _children(proc.pid)  # fresh data: its drawing processes
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "a killed run's workers live on"
    k = committed_epoch(killed)
    assert 2 <= k < EPOCHS
    assert start(killed, script).wait(timeout=300) == 0  # the same command again resumes after epoch k

    a, b = load_file(str(whole / "last.safetensors")), load_file(str(killed / "last.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    ha = load_state(whole / "last.safetensors").meta["history"]
    hb = load_state(killed / "last.safetensors").meta["history"]
    assert [{**h, "seconds": 0} for h in ha] == [{**h, "seconds": 0} for h in hb]
    assert len(ha) == EPOCHS + 1 and [h["active_classes"] for h in ha][:4] == [2, 2, 7, 12]  # row 0: untrained
    best_a, best_b = load_checkpoint(whole / "best.safetensors"), load_checkpoint(killed / "best.safetensors")
    for (na, ta), (nb, tb) in zip(best_a.model.state_dict().items(), best_b.model.state_dict().items(), strict=True):
        assert na == nb and torch.equal(ta, tb)
    metrics = json.loads((killed / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics] == list(range(EPOCHS + 1))
    assert (killed / "metrics.csv").read_text().splitlines()[0].startswith("epoch,active_classes,train_loss")


def test_best_checkpoint_and_refusals(tmp_path):
    torch.manual_seed(0)
    model = FoldedModel.from_zoo("noscope-coral", 2)
    data = make_set(48, (3, 50, 50), 2)
    config = TrainConfig(model="noscope-coral", fold=2, data="synthetic", epochs=2, batch=16, progress=False)
    result = train(model, data, data, config, out=tmp_path)
    ck = load_checkpoint(result.best_path, fold=2, input_shape=(3, 50, 50))
    assert ck.meta["training"] == config.to_dict()
    assert ck.meta["metrics"]["val_top1"] == result.best_val_top1
    assert ck.normalization == result.normalization
    assert ck.class_names == ["c0", "c1"]
    with pytest.raises(CheckpointError, match=r"another config \(batch 16 -> 256, epochs 2 -> 3\); rerun with its "
                                              r"settings.*--init-from .*best.safetensors"):
        train(FoldedModel.from_zoo("noscope-coral", 2), data, data,
              TrainConfig(model="noscope-coral", fold=2, data="synthetic", epochs=3, progress=False), out=tmp_path)
    with pytest.raises(CheckpointError, match=r"other widths than this run builds \(classifier.1.bias: \(184,\) saved, "
                                              r"\(192,\) now\).*new --out directory"):
        train(FoldedModel.from_zoo("noscope-coral", 2, align=16), data, data, config, out=tmp_path)  # other widths
    again = train(FoldedModel.from_zoo("noscope-coral", 2), data, data, config, out=tmp_path)  # already complete
    assert again.history == result.history
    assert torch.equal(again.model.network.classifier[1].weight, result.model.network.classifier[1].weight)
    last = tmp_path / "last.safetensors"
    data_bytes = bytearray(last.read_bytes())
    data_bytes[-3] ^= 0xFF
    last.write_bytes(bytes(data_bytes))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_state(last)
    last.write_bytes(bytes(data_bytes[:100]))
    with pytest.raises(CheckpointError, match="not a readable training state"):
        load_state(last)
