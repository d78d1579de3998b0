"""Your own model in every command: `--module pkg.module:factory` or `--module path/file.py:factory` on a tiny
CNN written to tmp_path; its checkpoints load from another working directory."""

import json
import sys

import pytest
import torch
from train_data import make_set

from foldedcnn import FoldedCNNError
from foldedcnn.analysis.probe import probe_device, save_probe
from foldedcnn.checkpoint import load_checkpoint
from foldedcnn.cli import main
from foldedcnn.data.store import save_split, write_meta
from foldedcnn.errors import UntrustedCodeError
from foldedcnn.infer import Engine
from foldedcnn.transform import ModelRef, build_source, module_source

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES, SHAPE = 3, (3, 17, 40)
NETS = '''
import torch
import torch.nn.functional as F
from torch import nn

class Block(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

def tiny(width=8, classes=2):
    return nn.Sequential(Block(3, width), nn.MaxPool2d(2), Block(width, width), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(width, classes))

class MnistExample(nn.Module):  # PyTorch's examples/mnist network, for 3 x 17 x 40 images
    def __init__(self, classes=2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(16 * 6 * 18, 32)
        self.fc2 = nn.Linear(32, classes)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = torch.flatten(self.dropout1(F.max_pool2d(x, 2)), 1)
        return F.log_softmax(self.fc2(self.dropout2(F.relu(self.fc1(x)))), dim=1)

def mnist_example(classes=2):
    return MnistExample(classes)

def grouped(classes=2):  # GroupNorm: no warm start
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, classes))
'''


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    """npz:DIR with 96 / 24 / 40 learnable images (3, 17, 40) of 3 classes."""
    folder = tmp_path_factory.mktemp("data")
    for split, n, seed in (("train", 96, 0), ("val", 24, 1), ("test", 40, 2)):
        s = make_set(n, SHAPE, CLASSES, seed)
        save_split(folder, split, s.images.numpy(), s.labels.numpy())
    write_meta(folder, {"class_names": s.class_names})
    return f"npz:{folder}"


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """A folder holding byom_nets.py; sys.path and sys.modules are restored afterwards."""
    folder = tmp_path / "mycode"
    folder.mkdir()
    (folder / "byom_nets.py").write_text(NETS)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield folder
    for name in [m for m in sys.modules if "byom_nets" in m]:
        del sys.modules[name]


def forget(folder):
    """Make the module unknown again, as in a new process started elsewhere."""
    for name in [m for m in sys.modules if "byom_nets" in m]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p not in (str(folder), "")]


def test_train_eval_export_analyze_bench_a_module_factory(spec, nets, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path / "cache"))
    save_probe(probe_device("cpu", "float32", reps=1, matmul_size=128, copy_bytes=1 << 20))
    monkeypatch.chdir(nets)  # `python -m` style: the working directory is importable
    out = tmp_path / "run"
    assert main(["train", "--module", "byom_nets:tiny", "--module-kwargs", '{"classes": 3}', "--fold", "2",
                 "--data", spec, "--epochs", "2", "--batch", "24", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    # epoch lines without the bar: epoch 0 (the model as given) and the 2 trained epochs
    assert "trained byom_nets:tiny fold=2" in text and text.count("epoch=") == 3
    ckpt = out / "best.safetensors"
    source = load_checkpoint(ckpt, trust_code=True).meta["architecture"]["source"]
    assert source == {"factory": "byom_nets:tiny", "kwargs": {"classes": 3}, "search_path": str(nets.resolve())}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    forget(nets)
    ck = load_checkpoint(ckpt, trust_code=True)  # rebuilt from the recorded folder, not the working directory
    assert (ck.model.fold, ck.model.num_classes, ck.model.input_shape) == (2, 3, (3, 17, 40))
    assert main(["eval", str(ckpt), "--data", spec, "--json", "--trust-code"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 40

    capsys.readouterr()

    monkeypatch.chdir(nets)
    common = ["--module", "byom_nets:tiny", "--input-shape", "3", "17", "40", "--module-kwargs", '{"classes": 3}']
    assert main(["analyze", "noscope-coral", *common, "--fold", "1", "4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    mine = [r for r in rows if r["model"] == "byom_nets:tiny(classes=3)"]
    assert [r["fold"] for r in mine] == [1, 4] and mine[1]["flops_per_image"] > 0
    assert main(["bench", *common, "--folds", "1", "2", "--batch", "4", "--backends", "torch", "--device", "cpu",
                 "--trials", "1", "--iterations", "1", "--warmup", "0", "--no-plots", "--out",
                 str(tmp_path / "bench")]) == 0
    md = (tmp_path / "bench" / "throughput.md").read_text()
    assert "byom_nets:tiny(classes=3)" in md and "--module byom_nets:tiny --input-shape 3 17 40" in md


@pytest.mark.slow  # two ONNX exports, ~10 s each
def test_export_a_checkpoint_and_a_module_from_elsewhere(spec, nets, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(nets)
    out = tmp_path / "run"
    assert main(["train", "--module", "byom_nets:tiny", "--module-kwargs", '{"classes": 3}', "--fold", "2",
                 "--data", spec, "--epochs", "1", "--batch", "24", "--out", str(out), "--no-progress"]) == 0
    assert main(["export", "--module", "byom_nets:tiny", "--input-shape", "3", "17", "40", "--fold", "2",
                 "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    assert (tmp_path / "onnx" / "tiny-f2.onnx").stat().st_size > 0
    monkeypatch.chdir(tmp_path)
    forget(nets)
    assert main(["export", str(out / "best.safetensors"), "--format", "onnx", "--out", str(tmp_path / "ckpt-onnx"),
                 "--trust-code"]) == 0
    (exported,) = (tmp_path / "ckpt-onnx").glob("*.onnx")  # named <data>-<factory>-f<fold> after the checkpoint
    assert exported.name.endswith("-tiny-f2.onnx") and exported.stat().st_size > 0


def test_pytorchs_mnist_example_network_as_it_is(spec, nets, tmp_path, monkeypatch, capsys):
    """It ends in log_softmax(x, dim=1), which folded is done per image: training (cross-entropy of log-probabilities
    is their NLL), the checkpoint, the ONNX Runtime engine and eval give each image its own probabilities."""
    monkeypatch.chdir(nets)
    out = tmp_path / "run"
    assert main(["train", "--module", "byom_nets:mnist_example", "--module-kwargs", '{"classes": 3}', "--fold", "3",
                 "--data", spec, "--epochs", "3", "--batch", "24", "--out", str(out), "--no-progress"]) == 0
    ck = load_checkpoint(out / "best.safetensors", trust_code=True)
    x = torch.rand(7, *SHAPE)  # 7 images: 3 groups of 3, the last one padded
    norm = {k: torch.tensor(v).view(-1, 1, 1) for k, v in ck.model.normalization.items()}  # the Engine's, as trained
    with torch.no_grad():
        probabilities = ck.model.eval()((x - norm["mean"]) / norm["std"]).exp()
    torch.testing.assert_close(probabilities.sum(1), torch.ones(7))  # not one distribution over 3 images' 9 logits
    engine = Engine(ck.model, backend="onnxruntime")
    torch.testing.assert_close(engine.predict(x).softmax(1), probabilities, atol=1e-5, rtol=1e-4)  # fp32, exported
    capsys.readouterr()
    assert main(["eval", str(out / "best.safetensors"), "--data", spec, "--json", "--trust-code"]) == 0
    assert json.loads(capsys.readouterr().out)["top1"] > 50  # 3 classes: chance is 33 %; 70 % after 3 epochs here


def test_a_file_factory_records_its_absolute_path(spec, nets, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(nets.parent)
    out = tmp_path / "run"
    assert main(["train", "--module", "mycode/byom_nets.py:tiny", "--module-kwargs", '{"classes": 3, "width": 4}',
                 "--data", spec, "--epochs", "1", "--batch", "24", "--out", str(out), "--no-progress"]) == 0
    ckpt = out / "best.safetensors"
    source = load_checkpoint(ckpt, trust_code=True).meta["architecture"]["source"]
    assert source == {"factory": f"{(nets / 'byom_nets.py').resolve()}:tiny", "kwargs": {"classes": 3, "width": 4}}
    monkeypatch.chdir(tmp_path)
    forget(nets)
    with pytest.raises(UntrustedCodeError, match="byom_nets.py"):  # a file's code is gated like a module's
        load_checkpoint(ckpt)
    assert not any("byom_nets" in m for m in sys.modules)
    ck = load_checkpoint(ckpt, trust_code=True)
    x = torch.rand(3, 3, 17, 40)
    assert ck.model(x).shape == (3, 3)
    assert [m.out_channels for m in ck.model.network.modules() if isinstance(m, torch.nn.Conv2d)] == [4, 4]
    # warm-start a folded run from it: its code is the user's own, so --trust-code lets train import it
    argv = ["train", "--module", str(nets / "byom_nets.py") + ":tiny", "--module-kwargs", '{"classes": 3, "width": 4}',
            "--fold", "2", "--data", spec, "--epochs", "1", "--batch", "24", "--init-from", str(ckpt),
            "--out", str(tmp_path / "f2"), "--no-progress"]
    capsys.readouterr()
    assert main(argv) == 2 and "--trust-code" in capsys.readouterr().err
    assert main([*argv, "--trust-code"]) == 0


def test_choose_a_module_factory_runs_only_the_code_named(spec, nets, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(nets)
    out = tmp_path / "choose"
    argv = ["choose", spec, "--module", "byom_nets:tiny", "--module-kwargs", '{"classes": 3}', "--folds", "2",
            "--epochs", "1", "--batch", "24", "--backend", "torch", "--measure-batch", "8", "--max-drop", "100",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0  # no --trust-code: choose loads the checkpoints of the code it was told to run
    assert "recommended: f=" in capsys.readouterr().out
    assert load_checkpoint(out / "f2" / "best.safetensors", trust_code=True).meta["architecture"]["source"][
        "factory"] == "byom_nets:tiny"
    assert main(["train", "--module", "byom_nets:tiny", "--module-kwargs", '{"classes": 3, "width": 4}', "--data",
                 spec, "--epochs", "1", "--batch", "24", "--out", str(tmp_path / "other"), "--no-progress"]) == 0
    (tmp_path / "other" / "best.safetensors").replace(out / "f1" / "best.safetensors")  # code it was not told of
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not from byom_nets:tiny(classes=3)" in err and len(err.strip().splitlines()) == 1, err


def test_choose_trains_a_fold_warm_start_cannot_copy_from_scratch(spec, nets, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(nets)
    assert main(["choose", spec, "--module", "byom_nets:grouped", "--module-kwargs", '{"classes": 3}', "--folds", "2",
                 "--epochs", "1", "--batch", "24", "--backend", "torch", "--measure-batch", "8", "--max-drop", "100",
                 "--out", str(tmp_path / "choose"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "f=2: no warm start (layer 1: warm start needs" in out and "a groupnorm" in out
    assert "trained from scratch for 1 epochs, as f=1" in out
    config = load_checkpoint(tmp_path / "choose" / "f2" / "best.safetensors", trust_code=True).meta["training"]
    assert config["init_from"] is None and config["epochs"] == 1


def test_module_mistakes_give_one_clear_error(nets, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(nets)
    cases = [
        (["fold", "--module", "no_such_module_xyz:f", "--input-shape", "3", "8", "8"],
         "cannot import 'no_such_module_xyz'"),
        (["fold", "--module", "byom_nets:nothing", "--input-shape", "3", "8", "8"], "has no 'nothing'"),
        (["fold", "--module", "missing.py:tiny", "--input-shape", "3", "8", "8"], "does not exist"),
        (["fold", "--module", "byom_nets:tiny"], "--input-shape C H W is required"),
        (["fold", "--module", "byom_nets"], "--module takes pkg.module:function"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    (nets / "byom_nets_broken.py").write_text("import not_installed_dependency_xyz\n")
    with pytest.raises(FoldedCNNError, match="importing byom_nets_broken failed.*not_installed_dependency_xyz"):
        build_source(module_source("byom_nets_broken:f"))


def test_model_ref_builds_zoo_and_factory_models(nets, monkeypatch):
    monkeypatch.chdir(nets)
    ref = ModelRef("byom_nets:tiny", (3, 16, 16), {"classes": 3})
    assert ref == ModelRef("byom_nets:tiny", (3, 16, 16), {"classes": 3}) and len({ref, ref}) == 1
    folded = ref.build(4)
    assert folded.plan.fold == 4 and folded(torch.rand(5, 3, 16, 16)).shape == (5, 3)
    assert ModelRef("noscope-coral").build(2).identity.zoo == "noscope-coral"


def test_training_a_sourceless_fold_model_into_a_folder_fails_before_any_work(tmp_path):
    from torch import nn

    from foldedcnn import fold_model
    from foldedcnn.checkpoint import CheckpointError
    from foldedcnn.train import TrainConfig, train

    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, CLASSES))
    folded = fold_model(net, 2, torch.zeros(1, *SHAPE))  # no source=: its checkpoints could not be loaded
    data = make_set(16, SHAPE, CLASSES, 0)
    config = TrainConfig(fold=2, epochs=1, batch=8, progress=False)
    with pytest.raises(CheckpointError, match=r"saves checkpoints, .* source=.* or train with out=None"):
        train(folded, data, data, config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert train(folded, data, data, config).best_path is None  # without a folder it trains
