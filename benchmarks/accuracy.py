"""Accuracy of FoldedCNNs against the original (f = 1): game HUD tasks, vtest person-in-region, Fashion-MNIST.

Every run trains with foldedcnn.train (fold-mixed batches, epoch 0 evaluated, best-on-validation checkpoint) and
reports per-image top-1 on the test split of that checkpoint. Runs are resumable: each writes
<runs>/<task>/f<F>-<method>[-n<narrow epochs>]-e<E>/ (a narrow stage in its narrow/) and a finished run is not
redone.

    env PYTHONPATH=src .venv/bin/python benchmarks/accuracy.py [--tasks vtest,...]          # CPU recipe
    env PYTHONPATH=src .venv/bin/python benchmarks/accuracy.py --device cuda                # GPU recipe
    env PYTHONPATH=src .venv/bin/python benchmarks/accuracy.py --recipe gpu --smoke         # tiny, on the CPU
    env PYTHONPATH=src .venv/bin/python benchmarks/accuracy.py --sweep --tasks game-apex-squad-count  # fine-tune rates

Two recipes (cpu_tasks and gpu_tasks in _accuracy_recipes.py; the tables are written by _accuracy_tables.py): the
CPU one is sized for under 30 minutes on 2 CPU cores (6,000 images per epoch, 12-72 epochs, two jobs at a time);
the GPU one for at most 10 minutes on an H100/H200 (20,000 images per epoch, 40-60 epochs, the epoch's images on the
GPU, fresh images drawn by worker processes ahead of training). Each task's original and control train first, in
one job; then each of its other runs in a job of its own, --jobs (default 2 on CPU, 3 on GPU) at a time; --paper-recipe
adds the paper's (from scratch, class curriculum, Adam 1e-4, 200 epochs). --rows-from tabulates the rows earlier
invocations printed into their logs. Results go to
benchmarks/results/accuracy.{csv,md} (CPU) or accuracy-<device type>.{csv,md}; --smoke runs every task and run of the
recipe with a few images and epochs and writes its tables under --runs instead, so it never replaces committed
results. --sweep trains, instead of a task's table, its warm-started fine-tune at several learning rates and folds
(see sweep) and writes finetune_sweep.{csv,md}, each run's validation top-1 per epoch in val_curve (with
--sweep-narrow: the rate of the folds' narrow stage, finetune_sweep-narrow.{csv,md}); --paper-widths trains the
folded runs at the paper's widths where those differ from the default's (accuracy-paper-widths.{csv,md}); --seed N
(N != 0) gives every run seed N and writes accuracy-seedN.{csv,md}, the same fixed validation and test images.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import replace
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import torch
from _accuracy_recipes import METHODS, Run, Task, cpu_tasks, gpu_tasks, smoke, sweep
from _accuracy_tables import PAPER_INTRO, SWEEP_INTRO, SWEPT, judged, logged_rows, write
from torch import nn

from foldedcnn._parent_watch import exit_with_parent
from foldedcnn.checkpoint import load_checkpoint
from foldedcnn.data import LabelledImages, load_data
from foldedcnn.device import device_name
from foldedcnn.folded import FoldedModel
from foldedcnn.train import TrainConfig, evaluate, narrow_history, teacher_logits, train_from_config
from foldedcnn.train._state import load_state
from foldedcnn.train.recipe import NARROW
from foldedcnn.transform import fold_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def fashion_cnn() -> nn.Module:
    """General-purpose CNN for 3x32x32 Fashion-MNIST (N, 3, 32, 32) -> (N, 10): a stand-in for resnet18-cifar10,
    which is too slow to train on 2 CPU cores. Folded generically with fold_model."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def paper_widths(task: Task) -> Task:
    """`task` with its folded runs at the paper's widths (align 1), those whose network differs from the default's
    (--paper-widths: the tensor-core widths round F up, and the narrow network takes its F // f)."""
    def shapes(run: Run) -> list[tuple[int, ...]]:
        return [tuple(p.shape) for p in build(task, run, 0).parameters()]

    paper = tuple(replace(r, align=1) for r in task.runs[2:] if r.fold > 1)
    return replace(task, runs=(*task.runs[:2], *(r for r in paper if shapes(r) != shapes(replace(r, align=None)))))


def subsample(data: LabelledImages, n: int | None, seed: int) -> LabelledImages:
    """The first n images of a seeded permutation of `data` (all of it when n is None)."""
    if n is None or n >= data.labels.numel():
        return data
    idx = torch.randperm(data.labels.numel(), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return LabelledImages(data.images[idx], data.labels[idx], data.class_names, data.name)


def build(task: Task, run: Run, seed: int) -> FoldedModel:
    """The task's model at `run.fold` (widths aligned to `run.align`), initialised from `seed`."""
    torch.manual_seed(seed)
    if task.model.startswith("fashion-cnn"):
        source = {"factory": "accuracy:fashion_cnn", "kwargs": {}}
        return fold_model(fashion_cnn(), run.fold, torch.randn(2, 3, 32, 32), align=run.align, source=source)
    return FoldedModel.from_zoo(task.model, run.fold, align=run.align)


def machine(device: str, threads: int, jobs: int) -> str:
    return (f"Machine: {device_name(device)}, {jobs} jobs x {threads} threads, torch {torch.__version__}, "
            f"{platform.system()}")


def finished(out: Path, epochs: int) -> bool:
    """Whether the run in `out` has trained all its `epochs` (its metrics.json ends with that epoch)."""
    metrics = out / "metrics.json"
    return metrics.is_file() and json.loads(metrics.read_text())[-1]["epoch"] == epochs


def run_runs(task: Task, chosen: tuple[Run, ...], seed: int, runs: Path, threads: int, device: str, workers: int,
             finished_only: bool = False) -> list[tuple[int, dict]]:
    """Train (or resume) the `chosen` runs of `task` under runs/<task>/ (the others only named: the original and
    the control these start from or learn from must have finished) and return (index in task.runs, result row)
    per run; with `finished_only`, only evaluate the chosen runs that have finished (none when the original is
    chosen and has not)."""
    torch.set_num_threads(threads)
    train_set = subsample(load_data(task.data, "train"), task.n_train, seed)
    val_set = subsample(load_data(task.data, "val"), task.n_val, seed)
    test_set = subsample(load_data(task.data, "test"), task.n_test, seed)
    original = runs / task.name / task.runs[0].name / "best.safetensors"
    control = None if (c := control_run(task)) is None else runs / task.name / c.name / "best.safetensors"
    rows, soft = [], {}  # teacher checkpoint -> its logits of train_set
    own = task.model.startswith("fashion-cnn")  # checkpoints rebuilt by this script's fashion_cnn: code we trust
    for index, run in enumerate(task.runs):
        if run not in chosen:
            continue
        if finished_only and not finished(runs / task.name / run.name, run.epochs):
            print(f"{task.name} {run.name}: not finished, left out", flush=True)
            if run == task.runs[0]:
                return []
            continue
        options = {"curriculum": "off", "lr": task.lr, **METHODS[run.method]}
        if run.lr is not None:
            options["lr"] = run.lr
        for key in ("init_from", "distill_from"):
            if source := options.pop(key, False):
                options[key] = str(control if source == "control" else original)
        if run.fold > 1 and "init_from" in options:
            options["narrow_epochs"] = run.narrow
        config = TrainConfig(model=task.model, fold=run.fold, data=task.data, epochs=run.epochs, batch=task.batch,
                             seed=seed, distill_alpha=0.5, align=run.align, fresh_data=task.fresh,
                             data_workers=workers, device=device, progress=False, **options)
        if config.distill_from and config.distill_from not in soft:  # each teacher once per task
            soft[config.distill_from] = teacher_logits(config.distill_from, train_set.images, device=device,
                                                       trust_code=own)
        t0 = time.perf_counter()
        result = train_from_config(config, runs / task.name / run.name, build(task, run, seed), train_set=train_set,
                                   val_set=val_set, teacher=soft.get(config.distill_from), trust_code=own)
        narrow = narrow_history(runs / task.name / run.name)
        best = load_checkpoint(result.best_path, fold=run.fold, device=device, trust_code=own)
        top1 = evaluate(best.model, test_set.images, test_set.labels, best.normalization, device=device).top1
        rows.append((index, {"task": task.name, "model": task.model, "fold": run.fold, "method": run.method,
                     "init": "original" if config.init_from else "scratch", "align": run.aligned,
                     "role": "original" if run == task.runs[0] else ("control" if run.fold == 1 else "folded"),
                     "data": "fresh" if task.fresh else "fixed", "top1": round(top1, 2),
                     "val_start": round(result.history[0]["val_top1"], 2), "val_best": round(result.best_val_top1, 2),
                     "val_curve": " ".join(f"{h['val_top1']:.1f}" for h in result.history),
                     "narrow_curve": " ".join(f"{h['val_top1']:.1f}" for h in narrow),
                     "best_epoch": best.meta["metrics"]["epoch"], "narrow": len(narrow) - 1 if narrow else 0,
                     "epochs": run.epochs,
                     "n_train": train_set.labels.numel(), "n_test": test_set.labels.numel(), "batch": task.batch,
                     "lr": _narrow_rate(runs / task.name / run.name) if narrow else result.lr,
                     "folded_lr": result.lr if narrow else "",
                     "train_seconds": round(result.seconds + (narrow[-1]["seconds"] if narrow else 0.0), 1),
                     "device": device, "seed": seed}))
        print(rows[-1][1], f"(wall {time.perf_counter() - t0:.0f} s)", flush=True)
    return rows


def control_run(task: Task) -> Run | None:
    """The control of `task`: its first f = 1 warm run (compared() lists it right after the original), which the
    folds may learn from (warm+control-kl); None for a task without one."""
    return next((r for r in task.runs[1:] if r.fold == 1 and r.method == "warm"), None)


def phases(task: Task) -> tuple[tuple[Run, ...], list[tuple[Run, ...]]]:
    """What of `task` trains first, in one job (its original, then the control the folds start from or learn
    from), and what may then train at once, a job each (every other run)."""
    control = control_run(task)
    first = (task.runs[0], *([control] if control else []))
    return first, [(run,) for run in task.runs if run not in first]


def train_tasks(pool: Executor, tasks: list[Task], job: Callable[[Task, tuple[Run, ...]], list[tuple[int, dict]]],
                report: Callable[[list[dict]], None]) -> list[str]:
    """Every task's phases as jobs on `pool`: its first job, then each of its other runs as a job of its own once
    that one has finished, so that a long task spreads over the slots the short ones leave. After each job,
    `report` gets the judged rows of every task so far, in task order. A job that fails loses only its own runs
    (and a first job its task's others); returns the names of the tasks that lost runs."""
    rows: dict[int, dict[int, dict]] = {}  # task index -> run index -> row
    pending: dict[Future, tuple[int, bool]] = {pool.submit(job, task, phases(task)[0]): (i, True)
                                               for i, task in enumerate(tasks)}  # task index, whether its first
    failed: list[str] = []
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            i, first = pending.pop(fut)
            if fut.exception() is not None:  # the other jobs still train and are tabulated
                failed.append(tasks[i].name)
                print(f"{tasks[i].name} failed:", "".join(traceback.format_exception(fut.exception())), flush=True)
                continue
            got = dict(fut.result())
            rows.setdefault(i, {}).update(got)
            if first and got:  # none: --finished-only and the original has not finished
                pending.update({pool.submit(job, tasks[i], chosen): (i, False) for chosen in phases(tasks[i])[1]})
        report([row for i in sorted(rows) if rows[i]
                for row in judged(tasks[i], [rows[i][k] for k in sorted(rows[i])])])
    return list(dict.fromkeys(failed))  # each once, in the order they failed


def _narrow_rate(run_dir: Path) -> float | str:
    """The base learning rate of a run's narrow stage ("" for a stage saved before rates were saved)."""
    return load_state(run_dir / NARROW / "last.safetensors").meta.get("base_lr", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (the CPU recipe) or cuda (the GPU recipe)")
    parser.add_argument("--recipe", choices=["auto", "cpu", "gpu"], default="auto",
                        help="which recipe (auto: gpu on cuda, else cpu)")
    parser.add_argument("--paper-recipe", action="store_true",
                        help="GPU recipe: add the paper's recipe at f = 4 (200 epochs) to the games")
    parser.add_argument("--smoke", action="store_true", help="every run with a few images and epochs (a check)")
    parser.add_argument("--tasks", help="comma-separated task names (default: all)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of every run; other than 0 its runs and tables get a -seed<N> suffix")
    parser.add_argument("--jobs", type=int, help="jobs trained at once, one process each: a task's original and "
                        "control, then each of its other runs (default 2 on CPU, 3 on GPU)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument("--data-workers", type=int, help="processes drawing fresh images per run (default 1 on "
                                                         "CPU, 4 on GPU)")
    parser.add_argument("--runs", help="where run directories go (default runs/accuracy[-DEVICE][-smoke])")
    parser.add_argument("--rows-from", nargs="+", metavar="LOG",
                        help="train nothing: tabulate the rows that earlier invocations printed into these logs "
                             "(a device run whose table was lost to a timeout or a failed task)")
    parser.add_argument("--finished-only", action="store_true",
                        help="train nothing: tabulate the runs in --runs that have finished")
    parser.add_argument("--paper-widths", action="store_true",
                        help="instead of the table, the folded runs at the paper's widths where they differ from "
                             "the default's: writes accuracy-paper-widths[-DEVICE].{csv,md}")
    parser.add_argument("--sweep", action="store_true",
                        help="instead of the table, the fine-tune sweep of each task (see sweep): writes "
                             "finetune_sweep[-DEVICE].{csv,md} beside the tables")
    parser.add_argument("--sweep-folds", default="1,2,4", help="folds of the sweep (1: the control)")
    parser.add_argument("--sweep-lrs", default="3e-4,1e-3,3e-3", help="learning rates of the sweep")
    parser.add_argument("--sweep-epochs", type=int, help="epochs of each sweep run (default: the task's fine-tune)")
    parser.add_argument("--sweep-method", choices=sorted(SWEPT), default="warm+distill-kl",
                        help="how the sweep fine-tunes (warm: the table's method; writes finetune_sweep[-narrow]-warm)")
    parser.add_argument("--sweep-narrow", action="store_true",
                        help="sweep the narrow stage's rate: the folds' runs are --sweep-epochs narrow epochs, then 4 "
                             "folded (writes finetune_sweep-narrow.{csv,md})")
    args = parser.parse_args()
    gpu = args.recipe == "gpu" or args.recipe == "auto" and args.device.startswith("cuda")
    tasks = gpu_tasks(args.paper_recipe) if gpu else cpu_tasks()
    names = [t.name for t in tasks]
    chosen = args.tasks.split(",") if args.tasks else names
    if set(chosen) - set(names):
        parser.error(f"unknown task(s) {', '.join(sorted(set(chosen) - set(names)))}; choose from {', '.join(names)}")
    tasks = [t for t in tasks if t.name in chosen]
    if args.sweep:
        folds, lrs = (tuple(t(v) for v in arg.split(",")) for t, arg in ((int, args.sweep_folds),
                                                                            (float, args.sweep_lrs)))
        tasks = [sweep(t, folds, lrs, args.sweep_epochs, args.sweep_narrow, args.sweep_method) for t in tasks]
    elif args.paper_widths:
        tasks = [t for t in map(paper_widths, tasks) if len(t.runs) > 2]
    tasks = [smoke(t) if args.smoke else t for t in tasks]
    kind = torch.device(args.device).type
    label = ("" if kind == "cpu" else f"-{kind}") + ("-gpu-recipe" if gpu and kind == "cpu" else "") + (
        "-smoke" if args.smoke else "")
    label += f"-seed{args.seed}" if args.seed else ""  # another seed: its own runs and tables
    runs = Path(args.runs) if args.runs else ROOT / "runs" / f"accuracy{label}"
    jobs = args.jobs or (3 if gpu else 2)
    workers = args.data_workers or (4 if gpu else 1)
    start = time.perf_counter()
    command = "env PYTHONPATH=src .venv/bin/python benchmarks/accuracy.py " + " ".join(sys.argv[1:])
    table = (("finetune_sweep" + ("-narrow" if args.sweep_narrow else "") + ("-warm" if args.sweep_method == "warm"
                                                                              else "")) if args.sweep else
             "accuracy-paper-widths" if args.paper_widths else "accuracy")
    out = runs / table if args.smoke else RESULTS / f"{table}{label}"
    intro = (SWEEP_INTRO.format(how=SWEPT[args.sweep_method]) if args.sweep else
             PAPER_INTRO if args.paper_widths else "")
    if args.rows_from:
        logs = [Path(p) for p in args.rows_from]
        found = [line for log in logs for line in log.read_text().splitlines() if line.startswith("Machine: ")]
        write(logged_rows(logs, tasks), out, command, (found[0] if found else "Machine: see the logs' folder") +
              "; rows as the logs' runs printed them, not re-evaluated", intro)
        print(f"wrote {out.with_suffix('.md')}", flush=True)
        return
    print(machine(args.device, args.threads, jobs), flush=True)  # for --rows-from

    def report(rows: list[dict]) -> None:
        write(rows, out, command, f"{machine(args.device, args.threads, jobs)}\nWall time of this invocation: "
              f"{(time.perf_counter() - start) / 60:.1f} min (finished runs in --runs are not redone, only "
              "re-evaluated)", intro)
        print(f"wrote {out.with_suffix('.md')} ({len(rows)} runs)", flush=True)

    job = partial(run_runs, seed=args.seed, runs=runs, threads=args.threads, device=args.device, workers=workers,
                  finished_only=args.finished_only)
    # the workers end with this process: killed, it cannot shut the pool down, and they would train on unseen
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=exit_with_parent,
                             initargs=(os.getpid(),)) as pool:
        failed = train_tasks(pool, tasks, job, report)
    if failed:
        sys.exit(f"task(s) {', '.join(failed)} failed (their errors above); the table holds the rest")


if __name__ == "__main__":
    main()
