"""`make demo`: the main job end to end on embedded data, in a few minutes on a 2-core CPU.

1. analyse the zoo (FLOPs, arithmetic intensity; plot)
2. prepare the data: the person-in-region task on vtest.avi, and generated game-HUD crops
3. train the original (f = 1) of each task, then fine-tune a folded (f = 4) model warm-started from it (the
   library's fine-tune: its narrow network, one image's block, trained alone first, then copied into every block
   and the folded model fine-tuned at a low rate; epoch 0 evaluated, so the best never ends below the warm start)
4. evaluate both on the test split and measure their throughput on this machine
5. calibrate the folded vtest model's cascade thresholds on the validation split (NoScope's method)
6. label every frame of vtest.avi with it (CSV per video + summary.json), render the labels as an HTML page
7. export it as a Triton model repository that takes uint8 frames of any batch size
Everything lands under runs/demo/.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
import time
from pathlib import Path

from foldedcnn.cli import main
from foldedcnn.models import list_models
from foldedcnn.tables import format_table
from foldedcnn.train import narrow_history

OUT = Path("runs/demo")
GAME = "game-lol-gold-fraction"
TASKS = {  # name: (model, data spec, epochs, batch)
    "vtest": ("noscope-coral", f"vtest:{OUT}/vtest", 20, 32),
    GAME: (GAME, f"{GAME}?n_train=6000&n_val=1000&n_test=2000", 8, 64),
}
FOLDS = (1, 4)


def step(title: str, argv: list[str], capture: bool = False) -> str:
    print(f"\n=== {title}\n$ foldedcnn {' '.join(argv)}", flush=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf) if capture else contextlib.nullcontext():
        code = main(argv)
    if code != 0:
        sys.exit(f"demo step failed ({code}): {title}")
    return buf.getvalue()


def best_throughput(csv_path: Path) -> dict[tuple[str, int], tuple[float, str]]:
    """(model, fold) -> (highest median images/s over backends, that backend) from a bench CSV."""
    best: dict[tuple[str, int], tuple[float, str]] = {}
    with open(csv_path) as f:
        for row in csv.DictReader(f):
            key, ips = (row["model"], int(row["fold"])), float(row["images_per_s"])
            if row["backend"] != "torch-plain" and ips > best.get(key, (0.0, ""))[0]:
                best[key] = (ips, row["backend"])
    return best


def run() -> None:
    t0 = time.perf_counter()
    squareable = list_models(family="resnet")
    others = [m for m in list_models() if m not in squareable]
    step("1. FLOPs and arithmetic intensity of the zoo, f = 1..4",
         ["analyze", *others, "--fold", "1", "2", "3", "4", "--plot", f"{OUT}/intensity.png"])
    step("   ResNet-18 folds only by perfect squares", ["analyze", *squareable, "--fold", "1", "4"])
    step("2. Person-in-region task on vtest.avi (MOG2 oracle labels)",
         ["data", "video", "vtest", "--out", f"{OUT}/vtest", "--preview", f"{OUT}/vtest-preview.png"])
    step("   Generated game-HUD crops (preview grid)",
         ["data", "game", GAME, "--n", "1000", "--out", f"{OUT}/game", "--preview", f"{OUT}/game-preview.png"])
    accuracy, val = {}, {}
    for task, (model, spec, epochs, batch) in TASKS.items():
        for fold in FOLDS:
            out = OUT / f"{task}-f{fold}"
            original = str(OUT / f"{task}-f1" / "best.safetensors")
            recipe = ["--schedule", "cosine"] if fold == 1 else ["--init-from", original]  # the fine-tune defaults
            step(f"3. Train {model} f={fold} on {task}" + (" (warm start from the original)" if fold > 1 else ""),
                 ["train", "--model", model, "--fold", str(fold), "--data", spec, "--epochs", str(epochs),
                  "--batch", str(batch), "--seed", "0", "--out", str(out), "--no-progress", *recipe])
            history = json.loads((out / "metrics.json").read_text())
            start = (narrow_history(out) or history)[0]  # a warm start's narrow stage: its epoch 0 is the warm start
            val[(model, fold)] = (start["val_top1"], max(h["val_top1"] for h in history))
            if fold > 1 and val[(model, fold)][1] < val[(model, fold)][0]:
                sys.exit(f"the fine-tuned {task} f={fold} ended below its warm start: {val[(model, fold)]}")
            report = step(f"4. Evaluate {model} f={fold} on the {task} test split",
                          ["eval", str(out / "best.safetensors"), "--data", spec, "--json"], capture=True)
            accuracy[(model, fold)] = json.loads(report)["top1"]
    models = [m for m, *_ in TASKS.values()]
    step("4. Throughput on this machine (batch 1024)",
         ["bench", "--models", *models, "--folds", *map(str, FOLDS), "--batch", "1024",
          "--backends", "torch", "onnxruntime", "--trials", "3", "--out", f"{OUT}/bench"])
    speed = best_throughput(OUT / "bench" / "throughput.csv")
    rows = []
    for task, (model, *_) in TASKS.items():
        for fold in FOLDS:
            ips, backend = speed[(model, fold)]
            rows.append({"task": task, "model": model, "fold": fold, "val_top1_start_%": val[(model, fold)][0],
                         "val_top1_best_%": val[(model, fold)][1], "test_top1_%": accuracy[(model, fold)],
                         "images_per_s": round(ips), "backend": backend,
                         "speedup_vs_f1": round(ips / speed[(model, 1)][0], 2)})
    print("\n=== Accuracy and throughput side by side (CPU; the throughput gain of folding is a GPU effect)")
    print(format_table(rows))
    folded_vtest = str(OUT / "vtest-f4" / "best.safetensors")
    step("5. Calibrate the cascade: at most 1 % of people missed, 1 % of empty frames flagged, on the val split",
         ["calibrate", folded_vtest, "--data", TASKS["vtest"][1], "--max-fn", "0.01", "--max-fp", "0.01"])
    step("6. Label every frame of vtest.avi with the folded model (thresholds from the calibration)",
         ["run", folded_vtest, str(_vtest()), "--out", f"{OUT}/labels", "--backend", "onnxruntime",
          "--overwrite"])  # a rerun of the demo replaces the old labels
    step("   One page to look at the labels", ["report", f"{OUT}/labels"])
    step("7. Export for Triton Inference Server: uint8 frames (B, H, W, C), any B, fp16 on a GPU",
         ["export", folded_vtest, "--format", "triton", "--input", "uint8-nhwc", "--precision", "fp16",
          "--out", f"{OUT}/triton"])
    minutes = (time.perf_counter() - t0) / 60
    print(f"""
=== Done in {minutes:.1f} min. Outputs under {OUT}/:
  checkpoints     {OUT}/<task>-f<fold>/best.safetensors (+ metrics.csv, last.safetensors)
  frame labels    {OUT}/labels/vtest.csv, {OUT}/labels/summary.json and {OUT}/labels/report.html
  Triton model    {OUT}/triton/vtest-noscope-coral-f4/ (config.pbtxt, 1/model.onnx, labels.txt)
  throughput      {OUT}/bench/throughput.csv, throughput.md and plots
  plots           {OUT}/intensity.png, {OUT}/vtest-preview.png, {OUT}/game-preview.png""")


def _vtest() -> Path:
    from foldedcnn.data import vtest_path

    return vtest_path()


if __name__ == "__main__":
    run()
