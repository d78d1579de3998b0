import csv
import json

import pytest

from foldedcnn.analysis.probe import ProbeResult, probe_device, save_probe
from foldedcnn.bench import COLUMNS, Variant, derive_rows, write_report
from foldedcnn.bench.report import measurement_warnings, write_plots
from foldedcnn.cli import main


@pytest.fixture
def small_probe(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path / "cache"))
    return save_probe(probe_device("cpu", "float32", reps=1, matmul_size=128, copy_bytes=1 << 20))


def test_bench_writes_csv_markdown_plots_machine(tmp_path, small_probe, capsys):
    out = tmp_path / "res"
    argv = ["bench", "--models", "game-apex-squad-count", "resnet18-cifar10", "--folds", "1", "2", "--batch", "6",
            "--batch-for", "resnet18-cifar10=2", "--backends", "torch", "--device", "cpu", "--trials", "1",
            "--iterations", "1", "--warmup", "0", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "skipping resnet18-cifar10 f=2" in text and "best per model" in text
    rows = list(csv.DictReader((out / "throughput.csv").open()))
    assert list(rows[0]) == COLUMNS
    keys = {(r["model"], r["fold"], r["batch"], r["backend"], r["dtype"]) for r in rows}
    assert keys == {("game-apex-squad-count", "1", "6", "torch", "float32"),
                    ("game-apex-squad-count", "2", "6", "torch", "float32"),
                    ("game-apex-squad-count", "1", "6", "torch-plain", "float32"),
                    ("resnet18-cifar10", "1", "2", "torch", "float32"),
                    ("resnet18-cifar10", "1", "2", "torch-plain", "float32")}
    for r in rows:
        assert float(r["images_per_s_min"]) <= float(r["images_per_s"]) <= float(r["images_per_s_max"])
        assert float(r["flops_per_s"]) == pytest.approx(float(r["flops_per_image"]) * float(r["images_per_s"]))
        assert 0 < float(r["roofline_fraction"]) and r["roofline_binding"] in ("compute", "memory")
        if r["fold"] == "1":
            assert float(r["speedup_vs_f1"]) == 1.0
        if r["backend"] == "torch-plain":
            assert float(r["speedup_vs_eager"]) == 1.0
    md = (out / "throughput.md").read_text()
    assert "foldedcnn bench --models game-apex-squad-count resnet18-cifar10" in md and "Machine:" in md
    for png in ("throughput_vs_batch.png", "speedup.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    machine = json.loads((out / "machine.json").read_text())
    assert {"cpu", "cpu_cores", "gpu", "torch", "onnxruntime", "python", "probes"} <= machine.keys()


def test_end_to_end_mode_and_speedups(small_probe):
    from foldedcnn.analysis.probe import load_probe

    rates = {Variant("noscope-coral", f, 8, "torch", "float32", "end-to-end"): [100.0 * f, 120.0 * f] for f in (1, 2)}
    rates[Variant("noscope-coral", 1, 8, "torch-plain", "float32", "end-to-end")] = [50.0]
    rows = {(r["fold"], r["backend"]): r for r in derive_rows(rates, {"float32": load_probe()}, 1)}
    assert rows[(2, "torch")]["speedup_vs_f1"] == pytest.approx(2.0)
    assert rows[(2, "torch")]["speedup_vs_eager"] == pytest.approx(220 / 50)
    assert rows[(1, "torch")]["images_per_s"] == 110.0


def test_bench_refuses_unavailable_backend(small_probe, capsys):
    assert main(["bench", "--models", "noscope-coral", "--backends", "onnxruntime", "--dtype", "bfloat16",
                 "--device", "cpu"]) == 2
    assert "backend 'onnxruntime' cannot run on cpu bfloat16; available: torch" in capsys.readouterr().err


def test_end_to_end_mode_runs_predict_on_host_uint8(tmp_path, small_probe):
    out = tmp_path / "e2e"
    assert main(["bench", "--models", "game-apex-squad-count", "--folds", "1", "--batch", "3", "--backends", "torch",
                 "--device", "cpu", "--mode", "end-to-end", "--trials", "2", "--iterations", "1", "--warmup", "0",
                 "--no-baseline", "--no-plots", "--out", str(out)]) == 0
    (row,) = list(csv.DictReader((out / "throughput.csv").open()))
    assert (row["mode"], row["backend"], row["trials"]) == ("end-to-end", "torch", "2")
    assert float(row["images_per_s"]) > 0 and row["speedup_vs_eager"] == ""
    assert not (out / "speedup.png").exists()


@pytest.mark.slow
def test_peer_backend_folds_and_time_limit(tmp_path, small_probe, monkeypatch, capsys):
    from foldedcnn.bench import runner

    built = []

    def eager_peer(variant, device):  # the peer's torch.compile(max-autotune) takes minutes on a CPU
        built.append(variant)
        return lambda k: None

    monkeypatch.setattr(runner, "build_peer", eager_peer)
    out = tmp_path / "peer"
    argv = ["bench", "--models", "noscope-coral", "--folds", "1", "2", "--batch", "4", "--backends", "torch",
            "onnxruntime", "--backend-folds", "onnxruntime=2", "--peer", "--device", "cpu", "--mode", "kernel",
            "end-to-end", "--trials", "1", "--iterations", "1", "--warmup", "0", "--no-baseline", "--no-plots",
            "--out", str(out)]
    assert main(argv) == 0
    rows = {(r["fold"], r["backend"], r["mode"]): r for r in csv.DictReader((out / "throughput.csv").open())}
    # onnxruntime only at f = 2; the peer once, at f = 1, kernel mode
    assert set(rows) == {(f, b, m) for f in "12" for b in ("torch",) for m in ("kernel", "end-to-end")} | {
        ("2", "onnxruntime", "kernel"), ("2", "onnxruntime", "end-to-end"), ("1", runner.PEER, "kernel")}
    assert [(v.fold, v.mode, v.dtype) for v in built] == [(1, "kernel", "float32")]
    peer = float(rows[("1", runner.PEER, "kernel")]["images_per_s"])
    for r in rows.values():
        assert float(r["speedup_vs_peer"]) == pytest.approx(float(r["images_per_s"]) / peer)
    md = (out / "throughput.md").read_text()
    assert "--peer" in md and "--backend-folds onnxruntime=2" in md

    # past the time limit, torch.compile variants (compile, the peer) are left out and the rest reported
    argv[argv.index("onnxruntime")] = "compile"
    argv[argv.index("onnxruntime=2")] = "compile=2"
    assert main([*argv, "--time-limit", "0"]) == 0
    printed = capsys.readouterr().out
    assert "time limit: left out Variant(model='noscope-coral', fold=2, batch=4, backend='compile'" in printed
    assert f"left out Variant(model='noscope-coral', fold=1, batch=4, backend='{runner.PEER}'" in printed
    assert {r["backend"] for r in csv.DictReader((out / "throughput.csv").open())} == {"torch"}

    argv[argv.index("compile=2")] = "onnxruntime=2"
    assert main(argv) == 2
    assert "--backend-folds names 'onnxruntime', which is not among --backends" in capsys.readouterr().err


def _probe(peak_flops: float) -> ProbeResult:
    return ProbeResult("cpu", "test cpu", "float32", peak_flops, 1e10, 128, 1 << 20, "x", 1, "now")


def test_wide_spreads_and_ratios_above_one_are_warned(tmp_path, capsys):
    from foldedcnn.analysis import analyze_zoo_model

    per_image = analyze_zoo_model("noscope-coral", 2).flops_per_image  # at the widths bench runs (align 8)
    steady = Variant("noscope-coral", 1, 8, "torch", "float32", "kernel")
    noisy = Variant("noscope-coral", 2, 8, "torch", "float32", "kernel")
    rates = {steady: [1000.0, 1050.0, 1100.0], noisy: [3400.0, 6000.0, 9000.0]}
    rows = derive_rows(rates, {"float32": _probe(peak_flops=per_image * 4000)}, 1)  # 6000 images/s: 1.5 x peak
    warnings = measurement_warnings(rows)
    assert len(warnings) == 2 and all("noscope-coral f=2" in w for w in warnings)
    assert "trials spread 3,400-9,000 images/s, 93% of the median" in warnings[0]
    assert "utilization 1.50 and roofline_fraction 1.50 exceed 1" in warnings[1] and "--reprobe" in warnings[1]
    paths = write_report(rows, tmp_path, "foldedcnn bench ...", _MACHINE, {"float32": _probe(per_image * 4000)})
    md = (tmp_path / "throughput.md").read_text()
    assert "## Warnings" in md and warnings[0] in md
    assert tmp_path / "throughput_vs_batch.png" in paths
    assert measurement_warnings([r for r in rows if r["fold"] == 1]) == []


_MACHINE = {"device_name": "test cpu", "torch": "x", "torch_threads": 1, "onnxruntime": "x", "python": "3"}


@pytest.mark.parametrize("batches,x", [((8,), "fold"), ((8, 32), "batch")])
def test_throughput_plot_has_min_max_error_bars(tmp_path, monkeypatch, batches, x):
    import matplotlib.axes

    calls = []
    real = matplotlib.axes.Axes.errorbar
    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar",
                        lambda ax, xs, ys, **kw: calls.append((list(xs), list(ys), kw)) or real(ax, xs, ys, **kw))
    rates = {Variant("noscope-coral", f, b, "torch", "float32", "kernel"): [90.0 * f, 100.0 * f, 130.0 * f]
             for f in (1, 4) for b in batches}
    rows = derive_rows(rates, {"float32": _probe(1e12)}, 1)
    write_plots(rows, tmp_path)
    assert (tmp_path / "throughput_vs_batch.png").read_bytes()[:4] == b"\x89PNG"
    if x == "fold":  # one batch: a line over the folds, not a column of dots
        assert [(c[0], c[1]) for c in calls] == [([1, 4], [100.0, 400.0])]
        assert calls[0][2]["yerr"] == [[10.0, 40.0], [30.0, 120.0]]
    else:
        assert [(c[0], c[1]) for c in calls] == [([8, 32], [100.0, 100.0]), ([8, 32], [400.0, 400.0])]
        assert calls[1][2]["yerr"] == [[40.0, 40.0], [120.0, 120.0]]


def test_keep_going_leaves_out_a_failing_variant_and_reports_the_rest(tmp_path, small_probe, monkeypatch, capsys):
    from foldedcnn.bench import runner

    def broken_peer(variant, device):  # e.g. a compiler that fails on this machine
        raise RuntimeError("autotuning found no valid config")

    monkeypatch.setattr(runner, "build_peer", broken_peer)
    out = tmp_path / "keep"
    argv = ["bench", "--models", "noscope-coral", "--folds", "1", "2", "--batch", "4", "--backends", "torch",
            "--peer", "--device", "cpu", "--trials", "1", "--iterations", "1", "--warmup", "0", "--no-baseline",
            "--no-plots", "--out", str(out)]
    with pytest.raises(RuntimeError, match="no valid config"):  # by default the first failure ends the run
        main(argv)
    assert main([*argv, "--keep-going"]) == 0
    printed = capsys.readouterr().out
    assert (f"failed: left out Variant(model='noscope-coral', fold=1, batch=4, backend='{runner.PEER}'"
            in printed and "RuntimeError: autotuning found no valid config" in printed)
    rows = list(csv.DictReader((out / "throughput.csv").open()))
    assert {(r["fold"], r["backend"]) for r in rows} == {("1", "torch"), ("2", "torch")}
    assert "--keep-going" in (out / "throughput.md").read_text()
