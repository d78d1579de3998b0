import json
import warnings

import pytest
import torch
from transform_models import INPUT_SHAPE, make

from foldedcnn import FoldedCNNError, create_model, fold_model
from foldedcnn.checkpoint import load_checkpoint, save_checkpoint
from foldedcnn.cli import main
from foldedcnn.transform import rebuild_from_architecture

pytestmark = pytest.mark.usefixtures("one_thread")


def _source(name):
    return {"factory": "transform_models:make", "kwargs": {"name": name}}


@pytest.mark.parametrize("name,fold", [("resnet18", 4), ("everything", 2)])
def test_checkpoint_round_trip_of_a_generically_folded_model(tmp_path, name, fold):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folded = fold_model(make(name), fold, torch.randn(1, *INPUT_SHAPE), align=2, source=_source(name)).eval()
        path = save_checkpoint(tmp_path / "m.safetensors", folded)
        ck = load_checkpoint(path, fold=fold, input_shape=INPUT_SHAPE, trust_code=True)
    arch = ck.meta["architecture"]
    assert arch["kind"] == "plan" and arch["source"] == _source(name) and arch["plan"]["align"] == 2
    assert ck.model.plan == folded.plan
    x = torch.randn(2 * fold + 1, *INPUT_SHAPE)
    with torch.no_grad():
        assert torch.equal(ck.model(x), folded(x))


def test_zoo_source_and_missing_or_changed_source(tmp_path):
    folded = fold_model(create_model("noscope-coral", 1), 2, torch.randn(1, 3, 50, 50), source={"zoo": "noscope-coral"})
    path = save_checkpoint(tmp_path / "coral.safetensors", folded)
    assert load_checkpoint(path).model.plan == folded.plan
    plain = fold_model(make("vgg-bn"), 2, torch.randn(1, *INPUT_SHAPE))
    with pytest.raises(FoldedCNNError, match=r"records no source.*fold_model\(\.\.\., source="):
        save_checkpoint(tmp_path / "plain.safetensors", plain)  # refused at save time, not at load time
    assert not (tmp_path / "plain.safetensors").exists()
    arch = {"kind": "plan", "plan": plain.plan.to_dict(), "source": _source("resnet18")}
    with pytest.raises(FoldedCNNError, match="no longer folds to the stored plan"):
        rebuild_from_architecture(arch, trust_code=True)


def test_cli_fold_prints_the_plan_and_writes_a_rebuildable_json(tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert main(["fold", "--model", "noscope-coral", "--fold", "2", "--paper-widths", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "classifier.3" in text and "classifier" in text and "folded_out" in text
    arch = json.loads(out.read_text())
    assert arch["source"] == {"zoo": "noscope-coral"}
    rebuilt = rebuild_from_architecture(arch)
    assert rebuilt.plan.layer("features.0").folded_out == 22
    assert main(["fold", "--module", "transform_models:TinySqueezeNet", "--input-shape", "3", "16", "16",
                 "--fold", "3", "--align", "4"]) == 0
    assert "grouped" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["fold", "--module", "transform_models:TinyVGG"], "--input-shape C H W is required"),
        (["fold", "--module", "transform_models:ChannelSoftmax", "--input-shape", "3", "16", "16"],
         "node 'softmax'"),
        (["fold", "--model", "noscope-coral", "--input-shape", "3", "8", "8"], "cannot run on example_input"),
        (["fold", "--module", "no_such_module:f", "--input-shape", "3", "8", "8"], "cannot import"),
    ],
)
def test_cli_fold_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
