"""benchmarks/gpu.py, the GPU run of issue #14: its plan, its summary arithmetic, and one stage on the CPU."""

import json

import pytest
from bench_scripts import bench_script

from foldedcnn.bench.runner import PEER


@pytest.fixture(scope="module")
def gpu():
    with bench_script("gpu") as module:
        yield module


def test_gpu_plan_covers_every_specialized_model_with_the_peer(gpu):
    stages = gpu.plan(["torch", "compile", "compile-max", "triton"], "cuda", tiny=False)
    models = {m for s in stages for m in s.args[s.args.index("--models") + 1:] if not m.startswith("--")
              and m in gpu.specialized_models()}
    assert models == set(gpu.specialized_models()) and len(models) == 10
    core = stages[0].args
    assert "--peer" in core and "--reprobe" in core and "compile-max=1,4" in core
    assert all("--peer" in s.args for s in stages if not s.name.startswith("sweep"))
    assert all("--keep-going" in s.args for s in stages)  # a variant that fails on the GPU costs only its rows


def _row(model, fold, backend, mode, ips, util=0.1):
    return {"model": model, "fold": fold, "batch": 1024, "backend": backend, "mode": mode, "images_per_s": ips,
            "utilization": util}


def test_summary_ratios(gpu):
    rows = [_row("noscope-coral", 1, PEER, "kernel", 100.0), _row("noscope-coral", 1, "torch-plain", "kernel", 500.0),
            _row("noscope-coral", 1, "torch", "kernel", 80.0), _row("noscope-coral", 1, "compile-max", "kernel", 110.0),
            _row("noscope-coral", 2, "torch", "kernel", 150.0), _row("noscope-coral", 3, "torch", "kernel", 99.0),
            _row("noscope-coral", 4, "compile-max", "kernel", 320.0, util=0.31),
            _row("noscope-coral", 4, "compile-max", "end-to-end", 288.0),
            _row("noscope-coral", 4, "torch", "end-to-end", 999.0)]  # e2e is never the "best folded" kernel row
    (s,) = gpu.summarize(rows, 1024)
    assert s["peer"] == 100.0 and s["best_original"] == "110 compile-max" and s["original_vs_peer"] == 1.1
    assert s["best_folded"] == "320 compile-max f=4" and s["folded_vs_peer"] == pytest.approx(3.2)
    # the best at f = 2 (torch) over torch at f = 1, not over the best f = 1 row (compile-max)
    assert s["f2_vs_f1"] == f"{150 / 80:.2f} torch" and s["f3_vs_f1"] == f"{99 / 80:.2f} torch"
    assert s["e2e_vs_kernel"] == pytest.approx(0.9) and s["peak_pct"] == pytest.approx(31.0)
    assert s["goal"] == "3.0x"


@pytest.mark.slow
def test_one_tiny_stage_on_cpu_writes_rows_and_the_summary(gpu, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(gpu, "plan", lambda backends, device, tiny: [
        gpu.Stage("core-noscope-coral", ["--models", "noscope-coral", "--folds", "1", "2", "--batch", "8",
                                         "--backends", *backends, "--mode", "kernel", "end-to-end", "--device",
                                         device, "--no-plots", "--trials", "1", "--iterations", "1",
                                         "--warmup", "0"], 300)])
    assert gpu.main(["--tiny", "--device", "cpu", "--backends", "torch", "compile-max", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "backend 'compile-max' not available on cpu" in out and "core-noscope-coral: ok" in out
    rows = gpu.read_rows(tmp_path)
    assert {(r["fold"], r["backend"], r["mode"]) for r in rows} == {
        (1, "torch", "kernel"), (2, "torch", "kernel"), (1, "torch", "end-to-end"), (2, "torch", "end-to-end"),
        (1, "torch-plain", "kernel"), (1, "torch-plain", "end-to-end")}
    assert "noscope-coral" in (tmp_path / "summary.md").read_text()
    assert "best per model" in (tmp_path / "stages" / "core-noscope-coral" / "log.txt").read_text()
    assert out.strip().splitlines()[-1].startswith("noscope-coral")  # the table comes last
    # --summarize-only runs nothing and rebuilds the summary from the stages on disk, naming their machine
    (tmp_path / "summary.md").unlink()
    assert gpu.main(["--summarize-only", "--device", "cpu", "--out", str(tmp_path)]) == 0
    summary = (tmp_path / "summary.md").read_text()
    assert "core-noscope-coral: as found in" in summary and "| noscope-coral |" in summary
    machine = json.loads((tmp_path / "stages" / "core-noscope-coral" / "machine.json").read_text())
    assert summary.startswith(f"# GPU summary ({machine['device_name']},")
