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
    first = [  # as run_runs prints them, between training progress lines; apex before gold, as they finished
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


def _task(accuracy, name, folds=(2, 4)):
    recipes = accuracy.sys.modules["_accuracy_recipes"]
    return recipes.Task(name, name, name, recipes.compared(2, 3, folds=folds), batch=8, lr=1e-3, goal=0.5)


def test_a_tasks_other_runs_train_as_jobs_of_their_own_after_its_original_and_control(accuracy):
    import time
    from concurrent.futures import ThreadPoolExecutor

    tasks = [_task(accuracy, "long"), _task(accuracy, "short", folds=(4,)), _task(accuracy, "broken")]
    started, first_done, reports = [], set(), []

    def job(task, chosen):
        first = chosen[0] == task.runs[0]
        assert first or task.name in first_done  # never before its task's original and control have finished
        started.append((task.name, tuple(r.name for r in chosen)))
        time.sleep(0.05 if first else 0)  # free slots meanwhile: a run queued too early would start now
        if task.name == "broken" and chosen[0].fold == 4:
            raise RuntimeError("out of memory")
        first_done.update([task.name] if first else [])
        return [(i, {"task": task.name, "fold": r.fold, "top1": 90.0 - r.fold, "role": "x"})
                for i, r in enumerate(task.runs) if r in chosen]

    with ThreadPoolExecutor(4) as pool:
        failed = accuracy.train_tasks(pool, tasks, job, reports.append)
    names = {t.name: [r.name for r in t.runs] for t in tasks}
    assert {s for s in started[:3]} == {(t, tuple(n[:2])) for t, n in names.items()}  # original + control, together
    assert all(len(chosen) == 1 for _, chosen in started[3:])  # then every other run alone
    assert sorted(n for t, chosen in started for n in chosen) == sorted(n for ns in names.values() for n in ns)
    assert failed == ["broken"]  # its f = 4 run failed; the rest of the table stands
    final = reports[-1]
    assert [(r["task"], r["fold"]) for r in final] == [("long", 1), ("long", 1), ("long", 2), ("long", 4),
                                                       ("short", 1), ("short", 1), ("short", 4),
                                                       ("broken", 1), ("broken", 1), ("broken", 2)]
    assert [r["delta"] for r in final if r["task"] == "long"] == [0.0, 0.0, -1.0, -3.0]  # judged per task


def test_no_other_run_is_started_when_the_first_job_finds_nothing_finished(accuracy):
    from concurrent.futures import ThreadPoolExecutor

    calls = []
    with ThreadPoolExecutor(2) as pool:
        failed = accuracy.train_tasks(pool, [_task(accuracy, "t")], lambda t, chosen: calls.append(chosen) or [],
                                      lambda rows: None)
    assert failed == [] and len(calls) == 1  # --finished-only, the original unfinished: nothing to tabulate
