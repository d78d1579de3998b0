import json
import re

import pytest

from foldedcnn.cli import main
from foldedcnn.train._state import load_state

SPEC = "game-sot-coin-count?n_train=96&n_val=24&n_test=40"


pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_then_eval(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", "game-sot-coin-count", "--fold", "2", "--data", SPEC, "--epochs", "2",
            "--batch", "24", "--out", str(out), "--no-progress", "--curriculum", "on"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "2 epochs" in text and "best checkpoint" in text
    assert text.count("val_top1=") == 3  # --no-progress drops the bar, not the per-epoch lines (0, 1, 2)
    assert {p.name for p in out.iterdir()} >= {"best.safetensors", "last.safetensors", "metrics.csv", "metrics.json"}
    state = load_state(out / "last.safetensors")
    assert state.meta["epoch"] == 2 and state.meta["config"]["curriculum"] == "on"
    assert main(["eval", str(out / "best.safetensors"), "--data", SPEC, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 40 and summary["fold"] == 2 and 0 <= summary["top1"] <= 100
    assert len(summary["per_class"]) == 15 and len(summary["confusion"]["matrix"]) == 15  # small K: the details
    assert sum(map(sum, summary["confusion"]["matrix"])) == 40
    for name, row in summary["per_class"].items():  # recall is the per-class top-1: diagonal / row sum
        k = summary["confusion"]["classes"].index(name)
        support = sum(summary["confusion"]["matrix"][k])
        assert row["support"] == support
        if support:
            assert row["recall"] == pytest.approx(100 * summary["confusion"]["matrix"][k][k] / support, abs=1e-3)
    assert all(set(row) == {"true", "predicted", "count"} for row in summary["top_confusions"])
    assert main(["eval", str(out / "best.safetensors"), "--data", SPEC]) == 0
    text = capsys.readouterr().out
    assert "top-1 (per image)" in text and "precision" in text and "confusion matrix" in text


def test_eval_refuses_data_of_another_size(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "game-sot-coin-count", "--data", SPEC, "--epochs", "1", "--out", str(out),
                 "--no-progress"]) == 0
    capsys.readouterr()
    other = "game-apex-squad-count?n_train=8&n_val=8&n_test=8"
    assert main(["eval", str(out / "best.safetensors"), "--data", other]) == 2
    assert "expects input (3, 17, 40), not (3, 19, 25)" in capsys.readouterr().err


def test_warm_start_from_the_original(tmp_path, capsys):
    original = tmp_path / "f1"
    assert main(["train", "--model", "game-sot-coin-count", "--data", SPEC, "--epochs", "1", "--batch", "24",
                 "--out", str(original), "--no-progress"]) == 0
    ckpt = str(original / "best.safetensors")
    folded = tmp_path / "f2"
    assert main(["train", "--model", "game-sot-coin-count", "--fold", "2", "--data", SPEC, "--epochs", "1",
                 "--batch", "24", "--init-from", ckpt, "--distill-from", ckpt, "--distill", "kl",
                 "--schedule", "cosine", "--narrow-epochs", "2", "--out", str(folded), "--no-progress"]) == 0
    config = load_state(folded / "last.safetensors").meta["config"]
    assert config["init_from"] == ckpt and config["schedule"] == "cosine" and config["narrow_epochs"] == 2
    assert load_state(folded / "narrow" / "last.safetensors").meta["epoch"] == 2
    printed = capsys.readouterr().out
    assert ("narrow stage: 2 epochs of one image's block at fold 1 (every hidden width the folded one // 2), then 1 "
            "epoch of the folded model") in printed
    assert re.search(r"narrow stage: 2 epochs, val top-1 [\d.]+% warm-started, best [\d.]+% \(copied", printed)
    # a folded checkpoint is no original to warm-start from
    assert main(["train", "--model", "game-sot-coin-count", "--fold", "4", "--data", SPEC, "--epochs", "1",
                 "--init-from", str(folded / "best.safetensors"), "--out", str(tmp_path / "f4"),
                 "--no-progress"]) == 2
    assert "holds a fold=2 model, but fold=1 was asked for" in capsys.readouterr().err


def test_a_finished_warm_started_run_reruns_without_its_init_checkpoint(tmp_path, capsys):
    original = tmp_path / "f1"
    assert main(["train", "--model", "game-sot-coin-count", "--data", SPEC, "--epochs", "1", "--out", str(original),
                 "--no-progress"]) == 0
    argv = ["train", "--model", "game-sot-coin-count", "--fold", "2", "--data", SPEC, "--epochs", "1",
            "--init-from", str(original / "best.safetensors"), "--out", str(tmp_path / "f2"), "--no-progress"]
    assert main(argv) == 0
    (original / "best.safetensors").unlink()  # the saved state replaces the warm start when resuming
    assert main(argv) == 0
