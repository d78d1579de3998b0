import json

import pytest

from foldedcnn.cli import main


def test_analyze_json_prints_the_papers_values(capsys):
    assert main(["analyze", "noscope-coral", "--fold", "1", "2", "3", "4", "--paper-widths", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["fold"] for r in rows] == [1, 2, 3, 4]
    assert [r["flops_per_input"] for r in rows] == [16_400_512, 32_918_948, 51_471_402, 73_924_096]
    assert [round(r["intensity"], 2) for r in rows] == [58.70, 82.44, 101.34, 118.75]
    for r in rows:
        assert {"model", "fold", "params", "flops_per_input", "flops_per_image", "intensity"} <= r.keys()
        assert r["flops_per_image"] == r["flops_per_input"] / r["fold"]
    # without the option: tensor-core widths (multiples of 8), so f = 2 and 3 differ from the paper's
    assert main(["analyze", "noscope-coral", "--fold", "2", "3", "--json"]) == 0
    aligned = [r["flops_per_input"] for r in json.loads(capsys.readouterr().out)]
    assert aligned[0] > 32_918_948 and aligned[1] > 51_471_402


def test_min_block_reaches_analyze_and_fold(capsys):
    """--min-block 0 gives a game model at f = 4 the 16 channels sqrt(f) alone gives its last conv, and fewer FLOPs
    than the default's 32 (8 per image); `fold` prints the plan with them."""
    flops = {}
    for extra in ([], ["--min-block", "0"]):
        assert main(["analyze", "game-sot-coin-count", "--fold", "4", "--json", *extra]) == 0
        flops[bool(extra)] = next(r["flops_per_input"] for r in json.loads(capsys.readouterr().out) if r["fold"] == 4)
    assert flops[True] < flops[False] < 1.05 * flops[True]
    for extra, width in (([], 32), (["--min-block", "0"], 16)):
        assert main(["fold", "--model", "game-sot-coin-count", "--fold", "4", *extra]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("features.10 "))
        assert row.split()[7] == str(width), row  # folded_out


def test_analyze_table_and_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ai.png"
    assert main(["analyze", "game-apex-squad-count", "--fold", "1", "4", "--plot", str(out)]) == 0
    text = capsys.readouterr().out
    assert "intensity_gain" in text and "no probe cached" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_uses_a_cached_probe(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    from foldedcnn.analysis.probe import probe_device, save_probe

    save_probe(probe_device("cpu", "float32", reps=1, matmul_size=128, copy_bytes=1 << 20))
    assert main(["analyze", "noscope-coral", "--fold", "1", "--bytes-per-element", "4", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["roofline_binding"] in ("compute", "memory") and row["roofline_images_per_s"] > 0


@pytest.mark.parametrize(
    "argv,message",
    [
        (["analyze", "noscope-corl"], "did you mean noscope-coral"),
        (["analyze", "noscope-coral", "--fold", "0"], "fold must be an integer >= 1"),
        (["analyze", "resnet18-cifar10", "--fold", "2"], "1, 4, 9, 16"),
        (["analyze", "noscope-coral", "--batch", "0"], "--batch must be >= 1"),
    ],
)
def test_user_mistakes_give_one_clear_error(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_fold_one_family_cannot_use_is_skipped_not_fatal(capsys):
    assert main(["analyze", "noscope-coral", "resnet18-cifar10", "--fold", "1", "2", "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [(r["model"], r["fold"]) for r in rows] == [("noscope-coral", 1), ("noscope-coral", 2),
                                                       ("resnet18-cifar10", 1)]
    assert "skipping resnet18-cifar10 f=2: resnet18 needs a fold whose square root is an integer" in captured.err
    assert main(["analyze", "noscope-coral", "resnet18-cifar10", "--fold", "2"]) == 0
    text = capsys.readouterr().out
    assert "noscope-coral" in text and "resnet18-cifar10" not in text  # no empty table


def test_analyze_names_the_probe_it_has_when_the_dtype_differs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    from foldedcnn.analysis.probe import probe_device, save_probe

    save_probe(probe_device("cpu", "float32", reps=1, matmul_size=128, copy_bytes=1 << 20))
    assert main(["analyze", "noscope-coral", "--fold", "1"]) == 0  # 2 bytes/element by default
    out = capsys.readouterr().out
    assert "no probe cached" not in out
    assert "only cpu float32: pass --bytes-per-element 4 to use it" in out


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("argv", [["train", "--model", "noscope-coral", "--data", "npz:nowhere", "--device", "cuda"],
                                  ["eval", "missing.safetensors", "--data", "npz:nowhere", "--device", "cuda"]])
def test_cuda_without_cuda_is_one_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no CUDA device is available" in err and len(err.strip().splitlines()) == 1


def test_models_lists_the_zoo(capsys):
    assert main(["models", "--json"]) == 0
    names = [r["name"] for r in json.loads(capsys.readouterr().out)]
    assert len(names) == 12 and "game-lol-gold-int" in names
