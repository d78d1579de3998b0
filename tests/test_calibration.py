"""The cascade's thresholds calibrated to target error rates (NoScope's method), stored, and used by `run`."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from foldedcnn.checkpoint import load_checkpoint, save_checkpoint
from foldedcnn.cli import main
from foldedcnn.data import load_data, vtest_path
from foldedcnn.folded import FoldedModel
from foldedcnn.infer import Engine
from foldedcnn.label import calibrate_scores

pytestmark = pytest.mark.usefixtures("one_thread")

STEP = 1e-6  # scores are probabilities rounded to 6 decimals, as in the CSV


def _rates(scores, positive, lo, hi):
    """(false-negative rate, false-positive rate, reference share), counted directly from the rule."""
    called_negative, called_positive = scores <= lo, (scores >= hi) & ~(scores <= lo)
    unsure = ~called_negative & ~called_positive
    return called_negative[positive].mean(), called_positive[~positive].mean(), unsure.mean()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 999_999), st.booleans()), min_size=2, max_size=300)
       .filter(lambda rows: len({p for _, p in rows}) == 2),
       st.floats(0, 0.3), st.floats(0, 0.3))
def test_thresholds_meet_the_targets_and_are_the_tightest(rows, max_fn, max_fp):
    scores = np.array([s * STEP for s, _ in rows], dtype=np.float32)
    positive = np.array([p for _, p in rows])
    c = calibrate_scores(scores, positive, max_fn, max_fp)
    fn, fp, share = _rates(scores, positive, c.low, c.high)
    assert (fn, fp, share) == pytest.approx((c.fn_rate, c.fp_rate, c.reference_share))
    assert fn <= max_fn + 1e-12 and fp <= max_fp + 1e-12 and c.meets_targets
    assert 0 <= c.low <= c.high <= 1
    if c.low < c.high:  # NoScope's thresholds: one more grid step would break a target
        pos, neg = scores[positive], scores[~positive]
        assert (pos <= c.low + STEP).sum() > math.floor(max_fn * pos.size + 1e-9)
        assert (neg >= c.high - STEP).sum() > math.floor(max_fp * neg.size + 1e-9)
    else:  # the classes separate at these rates: one cut, no frame for the reference model
        assert share == 0


def test_a_worked_example():
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.9, 0.35, 0.5, 0.7, 0.8, 0.95], dtype=np.float32)
    positive = np.array([False] * 5 + [True] * 5)
    c = calibrate_scores(scores, positive, max_fn=0.2, max_fp=0.2)  # one of five may be missed each way
    # positives 0.35 0.5 0.7 ...: missing one allows LO just below 0.5; negatives ... 0.6 0.9: HI just above 0.6
    assert (c.low, c.high) == pytest.approx((0.5 - STEP / 2, 0.6 + STEP / 2))
    assert (c.fn_rate, c.fp_rate, c.reference_share) == pytest.approx((0.2, 0.2, 0.2))  # 0.5 and 0.6 are sent on


@pytest.fixture(scope="module")
def vtest_checkpoint(tmp_path_factory):
    try:
        vtest_path()
    except Exception:
        pytest.skip("vtest.avi not installed (make system-deps)")
    out = tmp_path_factory.mktemp("vtest-run")
    assert main(["train", "--model", "noscope-coral", "--fold", "2", "--data", "vtest", "--epochs", "2",
                 "--batch", "32", "--seed", "0", "--out", str(out), "--no-progress"]) == 0
    return out / "best.safetensors"


@pytest.mark.slow  # trains noscope-coral on vtest for 2 epochs (about 15 s of CPU)
def test_calibration_meets_its_targets_on_vtest_validation(vtest_checkpoint, tmp_path, capsys):
    weights = load_checkpoint(vtest_checkpoint).model.network.state_dict()
    assert main(["calibrate", str(vtest_checkpoint), "--data", "vtest", "--max-fn", "0.05", "--max-fp", "0.05",
                 "--backend", "torch"]) == 0
    out = capsys.readouterr().out
    assert "159 val frames of vtest (89 positive)" in out and "stored in the checkpoint" in out
    ck = load_checkpoint(vtest_checkpoint)  # still passes its SHA-256 check, same weights
    assert all(torch.equal(ck.model.network.state_dict()[k], v) for k, v in weights.items())
    cal = ck.meta["calibration"]
    assert (cal["max_fn"], cal["max_fp"], cal["split"], cal["frames"]) == (0.05, 0.05, "val", 159)
    # independent check on the validation split: score each frame, count the cascade's mistakes
    val = load_data("vtest", "val")
    probs = torch.softmax(Engine(ck.model, backend="torch").predict(val.images), dim=1).numpy().round(6)
    fn, fp, share = _rates(probs[:, 1], val.labels.numpy() == 1, cal["low"], cal["high"])
    assert fn <= 0.05 and fp <= 0.05
    assert share == pytest.approx(cal["reference_share"]) and f"{share:.1%}" in out
    print(f"vtest val: thresholds {cal['low']:.7f} {cal['high']:.7f}, FN {fn:.3f}, FP {fp:.3f}, reference {share:.1%}")

    # `run` takes the stored thresholds by default and says what share to expect; --uncertain still wins
    video = vtest_path()
    assert main(["run", str(vtest_checkpoint), str(video), "--out", str(tmp_path / "a"), "--stride", "8",
                 "--backend", "torch", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"expected {cal['reference_share']:.1%} of frames" in out
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["uncertain"] == [cal["low"], cal["high"]] and summary["thresholds_from"] == "calibration"
    assert main(["run", str(vtest_checkpoint), str(video), "--out", str(tmp_path / "b"), "--stride", "8",
                 "--uncertain", "0.3", "0.7", "--backend", "torch", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["uncertain"] == [0.3, 0.7] and summary["thresholds_from"] == "--uncertain"


def test_calibrate_refuses_bad_targets_and_multiclass_models(tmp_path, capsys):
    path = save_checkpoint(tmp_path / "apex.safetensors", FoldedModel.from_zoo("game-apex-squad-count", 1))
    assert main(["calibrate", str(path), "--data", "game-apex-squad-count?n_val=8", "--max-fn", "0.01"]) == 2
    assert "22 classes; the cascade's two thresholds are calibrated for a two-class" in capsys.readouterr().err
    assert main(["calibrate", str(path), "--data", "vtest", "--max-fp", "1.5"]) == 2
    assert "--max-fp must be in [0, 1)" in capsys.readouterr().err
