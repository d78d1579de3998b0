"""DataSpec strings and load_data: parsing, defaults, determinism, clear errors."""

from pathlib import Path

import pytest
import torch

from foldedcnn.data import DataError, DataSpec, LabelledImages, load_data, parse_spec, vtest_path


def test_parse_specs():
    assert parse_spec("game-lol-gold-int") == DataSpec("game", "game-lol-gold-int")
    s = parse_spec("game-lol-gold-int?n_train=5000&n_test=1000&holdout_fonts=1")
    assert s.options == {"n_train": 5000, "n_test": 1000, "holdout_fonts": 1}
    assert parse_spec("vtest") == DataSpec("vtest", "vtest")
    assert parse_spec("vtest:/tmp/v").path == Path("/tmp/v")
    assert parse_spec("fashion-mnist?size=32&channels=3").options == {"size": 32, "channels": 3}
    assert parse_spec("cifar10:/data/cifar-10-batches-py").kind == "cifar10"
    assert parse_spec("cifar100:/data/c100").kind == "cifar100"
    assert parse_spec("folder:/data/imgs").path == Path("/data/imgs")


@pytest.mark.parametrize(
    "spec,message",
    [
        ("imagenet", "unknown data spec 'imagenet'; valid: game-lol-gold-fraction"),
        ("game-lol-gold", "unknown game task 'game-lol-gold'"),
        ("game-sot-timer?n_train=lots", "must be an integer"),
        ("game-sot-timer?batch=3", "unknown option 'batch'"),
        ("game-sot-timer?n_train", "bad options 'n_train'"),
        ("cifar10", "needs a path"),
        ("game-sot-timer:/tmp", "takes no path"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(DataError, match=message):
        parse_spec(spec)


def test_load_data_game_is_deterministic_and_sized():
    spec = "game-apex-squad-count?n_train=300&n_val=40"
    a, b = load_data(spec, "train", seed=5), load_data(spec, "train", seed=5)
    assert isinstance(a, LabelledImages) and len(a) == 300 and len(load_data(spec, "val")) == 40
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    with pytest.raises(DataError, match="split must be one of train, val, test"):
        load_data(spec, "dev")


def test_vtest_prepares_once_into_the_data_dir(tmp_path, monkeypatch):
    try:
        source = vtest_path()
    except DataError:
        pytest.skip("vtest.avi not installed (make system-deps)")
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    (tmp_path / "vtest.avi").symlink_to(source)
    train = load_data("vtest", "train")
    assert train.images.shape[1:] == (3, 50, 50) and train.class_names == ["no person", "person"]
    counts = train.class_counts()
    assert min(counts) > 0.3 * sum(counts), "both classes well represented"
    assert (tmp_path / "vtest-task" / "meta.json").is_file()
    test = load_data("vtest", "test")
    assert len(train) + len(load_data("vtest", "val")) + len(test) == 795


def test_vtest_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDEDCNN_CACHE", str(tmp_path))
    monkeypatch.setattr("foldedcnn.data.vtest._DEBIAN_PATH", tmp_path / "absent.avi")
    with pytest.raises(DataError, match="make system-deps"):
        vtest_path()
