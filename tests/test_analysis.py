import json

import pytest
import torch

from foldedcnn import create_model
from foldedcnn.analysis import analyze_zoo_model, intensity_at, roofline_bound, torch_counted_flops
from foldedcnn.analysis.compound import compound_scaled_game_model
from foldedcnn.analysis.probe import load_probe, probe_device, save_probe
from foldedcnn.models import PAPER_WIDTHS

PAPER_FLOPS = {
    "noscope-coral": {1: 16_400_512, 2: 32_918_948, 3: 51_471_402, 4: 73_924_096},
    "noscope-taipei": {1: 196_160_128, 4: 817_921_024},
    "noscope-roundabout": {1: 120_589_952, 4: 498_680_320},
}
PAPER_AI_CORAL = {1: 58.70, 2: 82.44, 3: 101.34, 4: 118.75}


@pytest.mark.parametrize("name,fold,flops", [(n, f, v) for n, d in PAPER_FLOPS.items() for f, v in d.items()])
def test_flops_per_folded_input_are_the_papers(name, fold, flops):
    assert analyze_zoo_model(name, fold, align=PAPER_WIDTHS).flops_per_input == flops


@pytest.mark.parametrize("fold,ai", PAPER_AI_CORAL.items())
def test_arithmetic_intensity_is_the_papers(fold, ai):
    # the paper prints two decimals
    assert round(analyze_zoo_model("noscope-coral", fold, align=PAPER_WIDTHS).intensity(1024, 2), 2) == ai


def test_default_analysis_is_of_the_tensor_core_widths_the_engine_runs():
    # coral f = 2 at align 8: convs 16 -> 24, FC 128 -> 184 (181 rounded up), so more FLOPs than the paper's
    assert analyze_zoo_model("noscope-coral", 1).flops_per_input == PAPER_FLOPS["noscope-coral"][1]
    aligned = analyze_zoo_model("noscope-coral", 2)
    assert aligned.flops_per_input > PAPER_FLOPS["noscope-coral"][2]
    assert aligned.flops_per_input == analyze_zoo_model("noscope-coral", 2, align=8).flops_per_input


def test_intensity_rises_with_batch_towards_its_limit():
    a = analyze_zoo_model("noscope-coral", 4)
    values = [a.intensity(n) for n in (1, 16, 256, 4096, 65536)]
    assert values == sorted(values)
    assert values[-1] < a.intensity_limit() < values[-1] * 1.01
    # bytes per element scales intensity inversely
    assert a.intensity(1024, 4) == pytest.approx(a.intensity(1024, 2) / 2)
    with pytest.raises(ValueError):
        intensity_at(a.layers, 0, 4)


@pytest.mark.parametrize("name", ["noscope-roundabout", "game-lol-gold-int", "resnet18-cifar10"])
@pytest.mark.parametrize("fold", [1, 4])
def test_flops_cross_check_with_torch_flop_counter(name, fold):
    a = analyze_zoo_model(name, fold)
    model = create_model(name, fold)
    bias_flops = sum(2 * la.bias_macs for la in a.layers)
    assert torch_counted_flops(model, a.input_shape) == a.flops_per_input - bias_flops


def test_per_layer_stats_of_coral():
    layers = analyze_zoo_model("noscope-coral", 1).layers
    assert [la.kind for la in layers] == ["conv", "conv", "linear", "linear"]
    assert [la.flops for la in layers] == [2_240_000, 11_600_000, 2_560_000, 512]
    assert layers[0].in_elements == 3 * 50 * 50 and layers[0].out_elements == 16 * 50 * 50
    assert layers[2].in_elements == 16 * 25 * 25


def test_roofline_picks_the_binding_side():
    b = roofline_bound(flops_per_image=1e6, bytes_per_image=1e4, peak_flops=1e12, bandwidth=1e9)
    assert b.binding == "memory" and b.images_per_s == pytest.approx(1e5)
    b = roofline_bound(flops_per_image=1e6, bytes_per_image=1e4, peak_flops=1e9, bandwidth=1e12)
    assert b.binding == "compute" and b.images_per_s == pytest.approx(1e3)
    with pytest.raises(ValueError):
        roofline_bound(0, 1, 1, 1)


def test_compound_scaling_cuts_flops_and_intensity_while_folding_raises_intensity():
    base = analyze_zoo_model("game-lol-gold-int", 1)
    scaled = compound_scaled_game_model("game-lol-gold-int")
    folded = analyze_zoo_model("game-lol-gold-int", 4)
    assert scaled.flops_per_image < base.flops_per_image
    assert scaled.intensity() < base.intensity() < folded.intensity()


def test_probe_sizes_its_matmul_to_the_time_a_call_takes(monkeypatch):
    from foldedcnn.analysis import probe

    monkeypatch.setattr(probe, "CALL_S", 1e9)  # never slow enough: the full size
    assert probe._sized_matmul("cpu", torch.float32, 1024) == 1024
    monkeypatch.setattr(probe, "CALL_S", 0.0)  # the first call is slow enough: float16 on a CPU, say
    assert probe._sized_matmul("cpu", torch.float32, 1024) == 256
    r = probe.probe_device("cpu", "float32", reps=2, copy_bytes=1 << 22)
    assert r.matmul_size == 256 and r.peak_flops > 0


def test_probe_measures_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    r = probe_device("cpu", "float32", reps=2, matmul_size=256, copy_bytes=1 << 22)
    assert r.peak_flops > 1e8 and r.bandwidth > 1e8
    path = save_probe(r)
    assert json.loads(path.read_text())["device"] == "cpu"
    assert load_probe("cpu", "float32") == r
    assert load_probe("cpu", "float16") is None


def test_analysis_leaves_training_mode_alone():
    m = create_model("resnet18-cifar10")
    m.train()
    analyze_zoo_model("resnet18-cifar10")
    torch_counted_flops(m, (3, 32, 32))
    assert m.training
