"""benchmarks/accuracy.py, the accuracy tables of issue #16: rows recovered from a device run's log (--rows-from)."""

import pytest
from bench_scripts import bench_script


@pytest.fixture(scope="module")
def accuracy():
    with bench_script("accuracy") as module:
        yield module


def _row(task, fold, method, role, top1, epochs=40, narrow=0):
    return {"task": task, "fold": fold, "method": method, "role": role, "top1": top1, "epochs": epochs,
            "narrow": narrow, "lr": 0.005, "align": 8, "train_seconds": 1.0, "device": "cuda"}


def test_rows_from_logs_are_judged_per_task_in_recipe_order(accuracy, tmp_path):
    gold, apex = "game-lol-gold-int", "game-apex-squad-count"
    first = [  # as run_task prints them, between training progress lines; apex before gold, as they finished
        _row(apex, 1, "ce", "original", 94.61), _row(apex, 1, "warm", "control", 97.70),
        _row(apex, 2, "warm+control-kl", "folded", 97.30, epochs=4, narrow=60),
        _row(gold, 1, "ce", "original", 88.21), _row(gold, 1, "warm", "control", 96.08),
        _row(gold, 4, "warm+control-kl", "folded", 91.97, epochs=4, narrow=60),
        _row("vtest", 2, "distill-kl", "folded", 97.48),  # vtest's original never finished: left out
    ]
    lines = ["epoch=0 active_classes=2 val_top1=4.2"] + [f"{r} (wall 3 s)" for r in first] + ["accuracy.py exit 1"]
    (tmp_path / "a.log").write_text("\n".join(lines) + "\n")
    again = _row(gold, 4, "warm+control-kl", "folded", 91.97, epochs=4, narrow=60)  # a rerun's log repeats it
    (tmp_path / "b.log").write_text(f"Machine: NVIDIA H200\n{again} (wall 3 s)\n")
    rows = accuracy.logged_rows([tmp_path / "a.log", tmp_path / "b.log"], accuracy.gpu_tasks())
    assert [(r["task"], r["fold"], r["role"]) for r in rows] == [
        (gold, 1, "original"), (gold, 1, "control"), (gold, 4, "folded"),  # gpu_tasks() lists gold-int first
        (apex, 1, "original"), (apex, 1, "control"), (apex, 2, "folded")]
    judged = {(r["task"], r["fold"], r["role"]): (r["delta"], r["goal"]) for r in rows}
    assert judged[(gold, 4, "folded")] == (-4.11, "missed by 3.61")  # against the control, the better f = 1 run
    assert judged[(apex, 2, "folded")] == (-0.4, "met")
    assert judged[(gold, 1, "control")] == (0.0, "") and judged[(gold, 1, "original")] == (-7.87, "")
