"""Everything a GPU must show (issue #14) in one run of at most --budget seconds (default 480).

Runs `foldedcnn bench` in stages, each a subprocess with its own time limit, most important first,
and writes benchmarks/results/gpu-<device>/: stages/<stage>/ (each stage's CSV, Markdown, machine),
throughput.csv (all rows), summary.md, and prints a short table last:
per model, best original (f = 1, our backends) and best folded against the peer (plain
torch.compile(mode="max-autotune") of the original network, f = 1, fp16 channels-last, timed in the
same stage), the best at f = 2 / 3 over the same backend at f = 1, end-to-end over kernel, and % of
the probed fp16 peak.

Stages: core-<model> (noscope-coral, game-lol-gold-int: every backend, f = 1..4 (the compile tiers
at f = 1 and 4), kernel and end-to-end, the peer; the first one re-probes the peak), then one stage
per other specialized model, zoo-<model> (max-autotune only at f = 1, where it shares the peer's
cached compile; 3 trials of 10 batches), then sweep-noscope-coral (batch 16..16384, eager and
triton). A stage builds no more torch.compile variants when its time is nearly up and reports what
it measured; a stage that overruns is killed and loses only its own model's rows (on an H200 a
fresh machine took 40-48 s per zoo model, most of it the peer's max-autotune compile). The
torch.compile artefacts persist in foldedcnn's cache dir, so a second run on the same machine skips
most compile time. Each stage's output is kept in stages/<stage>/log.txt. `--summarize-only`
rewrites throughput.csv and summary.md from the stages already under --out (e.g. after rerunning
one stage by its printed command).
Goals: best original >= peer on every model; best folded >= 3.0x peer on coral and gold-int;
folded coral >= 30 % of the fp16 peak; f = 2 and 3 faster than f = 1; end-to-end >= 0.9x kernel
at batch 1024.

Usage: bash benchmarks/gpu.sh [--budget 480] [--dry-run] [--tiny --device cpu] [--out DIR] [--summarize-only]
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from foldedcnn.bench import machine_info, machine_slug
from foldedcnn.bench.runner import PEER
from foldedcnn.device import resolve_device
from foldedcnn.infer import BACKENDS, available_backends
from foldedcnn.models import list_models
from foldedcnn.tables import format_table, markdown_table

CORE = ["noscope-coral", "game-lol-gold-int"]
GOAL_VS_PEER = 3.0
WANTED = ["torch", "compile", "compile-max", "triton"]
SUMMARY_RESERVE_S = 15  # kept back from the budget for merging and printing
BUILD_RESERVE_S = 35  # a stage stops compiling this long before its limit: timing and writing its report


@dataclass(frozen=True)
class Stage:
    name: str
    args: list[str]
    cap_s: float  # the most this stage may take; less when the budget runs short


def specialized_models() -> list[str]:
    """The ten NoScope and game models (not the CIFAR ResNets)."""
    return [m for m in list_models() if not m.startswith("resnet")]


def plan(backends: list[str], device: str, tiny: bool) -> list[Stage]:
    """The stages, most important first. `backends`: those of WANTED that run on `device`."""
    if tiny:  # the same stages at CPU-test size: the script's plumbing, not a measurement
        timing = zoo_timing = ["--trials", "1", "--iterations", "1", "--warmup", "0"]
        batch, sweep, folds = ["--batch", "8"], ["--batch-sweep", "4", "8"], ["1", "2"]
    else:
        timing = ["--trials", "5", "--iterations", "20", "--warmup", "3"]
        zoo_timing = ["--trials", "3", "--iterations", "10", "--warmup", "2"]
        batch, sweep, folds = ["--batch", "1024"], ["--batch-sweep", "16", "256", "1024", "4096", "16384"], \
            ["1", "2", "3", "4"]
    shared = ["--device", device, "--no-plots", "--keep-going"]  # a variant that fails costs only its rows
    common = [*shared, *timing]
    peer = ["--peer"] if device == "cuda" else []  # max-autotune on a CPU compiles for minutes
    slow = [b for b in ("compile", "compile-max") if b in backends]
    stages = []
    for i, model in enumerate(CORE):
        limit = ["--backend-folds", *(f"{b}={folds[0]},{folds[-1]}" for b in slow)] if slow else []
        stages.append(Stage(f"core-{model}", ["--models", model, "--folds", *folds, *batch, "--backends", *backends,
                                              *limit, "--mode", "kernel", "end-to-end", *peer, *common,
                                              *(["--reprobe"] if i == 0 else [])], 120))
    fast = [b for b in backends if b != "compile"]
    others = [m for m in specialized_models() if m not in CORE]
    limit = ["--backend-folds", "compile-max=1"] if "compile-max" in fast else []
    for model in others:
        stages.append(Stage(f"zoo-{model}", ["--models", model, "--folds", *folds, *batch, "--backends", *fast,
                                             *limit, "--mode", "kernel", "end-to-end", *peer, *shared, *zoo_timing],
                            50))
    stages.append(Stage("sweep-noscope-coral", ["--models", "noscope-coral", "--folds", folds[0], folds[-1], *sweep,
                                                "--backends", *[b for b in fast if b != "compile-max"],
                                                "--mode", "kernel", "--no-baseline", *common], 45))
    return stages


def run_stage(stage: Stage, out: Path, deadline: float) -> str:
    """Run one stage as `python -m foldedcnn bench ... --out out/stages/<name>`; a line saying how it went."""
    left = deadline - time.monotonic() - SUMMARY_RESERVE_S
    if left < 20:
        return f"{stage.name}: skipped, {max(left, 0):.0f} s of the budget left"
    limit = min(stage.cap_s, left)
    cmd = [sys.executable, "-m", "foldedcnn", "bench", *stage.args, "--out", str(out / "stages" / stage.name),
           "--time-limit", f"{max(limit - BUILD_RESERVE_S, 1):.0f}"]
    print(f"\n== {stage.name} (limit {limit:.0f} s): {shlex.join(cmd[1:])}", flush=True)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, timeout=limit, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        printed = proc.stdout
    except subprocess.TimeoutExpired as exc:
        status, printed = f"timed out after {limit:.0f} s, rows lost", exc.stdout or ""
        printed = printed.decode(errors="replace") if isinstance(printed, bytes) else printed
    log = out / "stages" / stage.name / "log.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(printed)
    lines = printed.strip().splitlines()
    failed = [ln for ln in lines if ln.startswith("failed: left out")]
    tail = lines[-3:] if status != "ok" else []
    line = f"{stage.name}: {status} in {time.monotonic() - t0:.0f} s" + (
        f", {len(failed)} variant(s) failed (see {log})" if failed else "")
    print(line, *failed, *tail, sep="\n", flush=True)
    return line


def read_rows(out: Path) -> list[dict]:
    """Every stage's rows, numbers parsed, with the stage name added."""
    rows = []
    for path in sorted((out / "stages").glob("*/throughput.csv")):
        for r in csv.DictReader(path.open()):
            for k, v in r.items():
                if k not in ("model", "backend", "dtype", "mode", "roofline_binding"):
                    r[k] = float(v) if v not in ("", None) else None
            r["fold"], r["batch"] = int(r["fold"]), int(r["batch"])
            rows.append({**r, "stage": path.parent.name})
    return rows


def _best(rows: list[dict], **match) -> dict | None:
    mine = [r for r in rows if all(r[k] == v if not callable(v) else v(r[k]) for k, v in match.items())]
    return max(mine, key=lambda r: r["images_per_s"], default=None)


def _ours(backend: str) -> bool:
    return backend not in (PEER, "torch-plain")


def _ratio(a: dict | None, b: dict | None) -> float | None:
    return a["images_per_s"] / b["images_per_s"] if a and b else None


def _same_backend(rows: list[dict], fold: int) -> str | None:
    """The best kernel row of `rows` at `fold` over the same backend at f = 1, with that backend's name (the
    compile tiers run at f = 1 and 4 only, so the best at f = 2 against the best at f = 1 would compare two)."""
    best = _best(rows, fold=fold, backend=_ours, mode="kernel")
    base = best and _best(rows, fold=1, backend=best["backend"], mode="kernel")
    return best and base and f"{_ratio(best, base):.2f} {best['backend']}"


def summarize(rows: list[dict], batch: int) -> list[dict]:
    """Per model at `batch`: best original and best folded (kernel mode, our backends) against the peer, the
    best at f = 2 and 3 over the same backend at f = 1, end-to-end over kernel of the best folded variant, and
    its share of the probed peak (utilization)."""
    table = []
    for model in sorted({r["model"] for r in rows}):
        at = [r for r in rows if r["model"] == model and r["batch"] == batch]
        peer = _best(at, fold=1, backend=PEER)
        orig = _best(at, fold=1, backend=_ours, mode="kernel")
        folded = _best(at, fold=lambda f: f > 1, backend=_ours, mode="kernel")
        e2e = folded and _best(at, fold=folded["fold"], backend=folded["backend"], mode="end-to-end")
        table.append({
            "model": model, "peer": peer and peer["images_per_s"],
            "best_original": orig and f"{orig['images_per_s']:,.0f} {orig['backend']}",
            "original_vs_peer": _ratio(orig, peer),
            "best_folded": folded and f"{folded['images_per_s']:,.0f} {folded['backend']} f={folded['fold']}",
            "folded_vs_peer": _ratio(folded, peer),
            "goal": f"{GOAL_VS_PEER:.1f}x" if model in CORE else "",
            "f2_vs_f1": _same_backend(at, 2), "f3_vs_f1": _same_backend(at, 3),
            "e2e_vs_kernel": _ratio(e2e, folded),
            "peak_pct": 100 * folded["utilization"] if folded and folded["utilization"] is not None else None,
        })
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=480, help="seconds for the whole run (default 480)")
    p.add_argument("--device", choices=["cuda", "cpu"], default=None, help="default: cuda when present")
    p.add_argument("--backends", nargs="+", default=WANTED, help=f"default: {' '.join(WANTED)} (those available)")
    p.add_argument("--tiny", action="store_true", help="tiny batches and one trial (CPU test of the script)")
    p.add_argument("--dry-run", action="store_true", help="print the stages and exit")
    p.add_argument("--out", default=None, help="default benchmarks/results/gpu-<device name>")
    p.add_argument("--summarize-only", action="store_true",
                   help="run nothing: rewrite throughput.csv and summary.md from the stages under --out")
    args = p.parse_args(argv)
    t_start = time.monotonic()
    deadline = t_start + args.budget
    if args.dry_run and args.device == "cuda" and not torch.cuda.is_available():  # the GPU plan, shown anywhere
        device, avail = torch.device("cuda"), [b for b in WANTED if b in BACKENDS]
    else:
        device = resolve_device(args.device)
        avail = available_backends(device, torch.float16 if device.type == "cuda" else torch.float32)
    backends = [b for b in args.backends if b in avail]
    notes = [f"backend {b!r} not available on {device.type} here: skipped" for b in args.backends if b not in avail]
    slug = "dry-run" if args.dry_run else machine_slug(machine_info(device.type))
    out = Path(args.out or Path("benchmarks") / "results" / f"gpu-{slug}")
    stages = plan(backends, device.type, args.tiny)
    print(*notes, sep="\n")
    for s in stages:
        print(f"stage {s.name} (cap {s.cap_s:.0f} s): foldedcnn bench {shlex.join(s.args)}")
    if args.dry_run:
        return 0
    device_label = machine_info(device.type)["device_name"]
    if args.summarize_only:  # the machine the stages ran on, not this one
        found = sorted(out.glob("stages/*/throughput.csv"))
        log = [f"{path.parent.name}: as found in {path.parent}" for path in found]
        notes = []
        if found:
            device_label = json.loads((found[0].parent / "machine.json").read_text())["device_name"]
    else:
        log = [run_stage(s, out, deadline) for s in stages]
    rows = read_rows(out)
    if not rows:
        print("no stage produced rows", file=sys.stderr)
        return 1
    batch = 8 if args.tiny else 1024
    with (out / "throughput.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = summarize(rows, batch)
    elapsed = ("summarized from the stages' own files" if args.summarize_only
               else f"total {time.monotonic() - t_start:.0f} s of a {args.budget:.0f} s budget")
    (out / "summary.md").write_text("\n".join([
        f"# GPU summary ({device_label}, batch {batch}, kernel mode unless said)", "",
        "Made by `bash benchmarks/gpu.sh " + shlex.join(argv if argv is not None else sys.argv[1:]) + "`.", "",
        *[f"- {line}" for line in [*notes, *log, elapsed]], "",
        markdown_table(table), ""]))
    print("\n" + "\n".join([*notes, *log, elapsed]))
    print(f"\nwrote {out}/throughput.csv, summary.md and stages/; per model at batch {batch}:\n")
    print(format_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
