"""The tables of benchmarks/accuracy.py: each run's row judged against its task's goal, the summary per task and
fold, accuracy*.{csv,md}, and rows recovered from a run's log (--rows-from)."""

from __future__ import annotations

import ast
import csv
import subprocess
from pathlib import Path

from _accuracy_recipes import Task

from foldedcnn.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]


COLUMNS = ["task", "model", "fold", "method", "init", "align", "role", "data", "top1", "delta", "goal", "val_start",
           "val_best", "best_epoch", "narrow", "epochs", "n_train", "n_test", "batch", "lr", "train_seconds", "device",
           "seed", "folded_lr", "val_curve", "narrow_curve"]


def judged(task: Task, rows: list[dict]) -> list[dict]:
    """`rows` (one task's runs, the original among them) with each run's delta to the reference (the original,
    or the control when better) and whether it meets the task's goal."""
    reference = max(r["top1"] for r in rows if r["fold"] == 1)
    for r in rows:
        r["delta"] = round(r["top1"] - reference, 2)
        goal = dict(task.fold_goals).get(r["fold"], task.goal)
        r["goal"] = "" if r["fold"] == 1 else ("met" if r["delta"] >= -goal else f"missed by {-r['delta'] - goal:.2f}")
    return rows


def logged_rows(logs: list[Path], tasks: list[Task]) -> list[dict]:
    """The rows that run_runs printed into `logs` (its runs' result rows, one a line, as each run finished), judged
    per task in `tasks`' order: the table of device runs whose own table was lost (cut by a timeout, or another
    task failing). A task none of whose lines name its original is left out; a run logged twice counts once."""
    by_task: dict[str, dict[tuple, dict]] = {}
    for log in logs:
        for line in log.read_text().splitlines():
            if line.startswith("{'task': "):
                row = ast.literal_eval(line[:line.rindex("}") + 1])  # literals only: no code runs
                run = tuple(row.get(k) for k in ("fold", "method", "epochs", "narrow", "lr", "align"))
                by_task.setdefault(row["task"], {})[run] = row
    return [row for t in tasks if any(r["role"] == "original" for r in by_task.get(t.name, {}).values())
            for row in judged(t, list(by_task[t.name].values()))]


def _epochs(row: dict) -> str:
    """A run's epochs: "narrow+folded" after a narrow stage."""
    narrow = int(row.get("narrow") or 0)
    return f"{narrow}+{row['epochs']}" if narrow else str(row["epochs"])


def summary(rows: list[dict], swept: list[dict] = ()) -> list[dict]:
    """Per task and fold > 1, the best folded run (by test top-1) against the original and the control, and
    every method tried at that fold, here and in the fine-tune sweep's rows `swept` (CSV rows, marked "sweep")."""
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        original = next(r for r in mine if r["role"] == "original")
        control = max((r["top1"] for r in mine if r["role"] == "control"), default=None)
        for fold in sorted({r["fold"] for r in mine if r["role"] == "folded"}):
            tried = [r for r in mine if r["role"] == "folded" and r["fold"] == fold]
            also = [r for r in swept if r["task"] == task and r["fold"] == str(fold)]
            best = max(tried, key=lambda r: r["top1"])
            out.append({"task": task, "fold": fold, "original": original["top1"], "best control": control,
                        "best folded": best["top1"], "method": best["method"], "epochs": _epochs(best),
                        "vs original": round(best["top1"] - original["top1"], 2), "delta": best["delta"],
                        "goal": best["goal"],
                        "tried": ", ".join([*(f"{r['method']} lr {float(r['lr']):g} e{_epochs(r)}: {r['top1']}"
                                              for r in tried), *(f"sweep {r['method']} lr {float(r['lr']):g} "
                                                                 f"e{_epochs(r)}: {r['top1']}" for r in also)])})
    return out


PAPER_INTRO = """The folded runs at the paper's widths (`accuracy.py --paper-widths`, align 1: hidden widths floor(n *
sqrt(f)), their narrow networks floor(n * sqrt(f) / f)), beside the same original and control as accuracy.md, where
those widths differ from the default's (tensor-core widths: F rounded up to a multiple of 8, the narrow network
F // f; the game models at f = 2: 24 and 8 channels per image instead of 22 and 5)."""


SWEEP_INTRO = """Fine-tune sweep (`accuracy.py --sweep`): the task's original, then warm-started runs (`init`
original) fine-tuned {how} at each learning rate `lr` (after the library's warm-up, cosine decay), at f = 1 (the
control) and the folds, and (without --sweep-narrow) the folds distilled from scratch. val_curve: validation top-1
at epoch 0 (the model as given), 1, 2, ...; top1 is the test top-1 of the best-on-validation checkpoint."""


SWEPT = {"warm+distill-kl": "with KL distillation toward it", "warm": "on the labels alone (the table's method)"}


def write(rows: list[dict], out: Path, command: str, footer: str, intro: str = "") -> None:
    """<out>.csv (every run) and <out>.md (`intro`, summary, every run, command, `footer`: machine and time)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    lead = intro + "\n\n" if intro else ""
    device = rows[0]["device"] if rows else "no runs"
    sweep_csv = out.parent / "finetune_sweep.csv"
    swept = [] if intro or not sweep_csv.is_file() else list(csv.DictReader(sweep_csv.read_text().splitlines()))
    text = f"""# FoldedCNN accuracy vs the original (f = 1), {device}

{lead}Per-image top-1 (%) on the test split, from each run's best-on-validation checkpoint (epoch 0, the model as
given, counts: val_start is its validation top-1, best_epoch the epoch saved). "control" is the original trained
further with the folded runs' method (column method: warm start from itself, same epochs): warm-started runs start
from the trained original, so their epochs come on top of its epochs, and the control shows what that extra
training alone gives. delta = run - reference, where the reference is the better of original and control; goal:
within 0.5 points (game, vtest; on the CPU game f = 4: 2 points) or 2 points (Fashion-MNIST) of it. data
"fresh": new generated training images every epoch (validation and test fixed). tried: every run at that fold,
here and ("sweep") in finetune_sweep.md; lr: the base rate (a warm start's follows how much of the original's
top-1 it kept). narrow: epochs of the folded run's narrow stage (one image's block trained alone at fold 1,
warm-started from the original, then copied into every block), narrow_curve its validation top-1 per epoch; the
folded run's val_start is where the narrow stage left it, train_seconds counts both stages (epochs in the
summary: narrow+folded).

## Best folded run per task and fold

{markdown_table(summary(rows, swept))}

## Every run

{markdown_table(rows, COLUMNS)}

Command: `{command}` (commit {commit.strip()})
{footer}; sum of train_seconds over all rows: {sum(r['train_seconds'] for r in rows) / 60:.1f} min.
"""
    out.with_suffix(".md").write_text(text)
