"""Game-HUD generator: determinism, class coverage, label correctness, fonts held out, CLI."""

import json

import numpy as np
import pytest
import torch

from foldedcnn.cli import main
from foldedcnn.data import DataError, classify_text, load_data, render_text
from foldedcnn.data._fonts import GAME_FONTS
from foldedcnn.data.game import _text_mask, generate_batch, generate_game, split_fonts
from foldedcnn.data.game_labels import class_names
from foldedcnn.models.game import GAME_TASKS


@pytest.mark.parametrize("task", list(GAME_TASKS))
def test_shapes_classes_and_coverage(task):
    (h, w), k, _, _ = GAME_TASKS[task]
    data = generate_game(task, "train", 25 * k, seed=1)
    assert data.images.shape == (25 * k, 3, h, w) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64 and len(data.class_names) == k and data.class_names[-1] == "other"
    assert min(data.class_counts()) > 0, "every class appears"


def test_deterministic_by_seed_and_disjoint_splits():
    a = generate_game("game-lol-gold-int", "train", 600, seed=7)
    b = generate_game("game-lol-gold-int", "train", 600, seed=7)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, generate_game("game-lol-gold-int", "train", 600, seed=8).images)
    assert not torch.equal(a.images, generate_game("game-lol-gold-int", "val", 600, seed=7).images)
    big = generate_batch("game-sot-timer", 1100, seed=3)  # worker processes do not change the output
    assert np.array_equal(generate_batch("game-sot-timer", 1100, seed=3, workers=2).images, big.images)


def test_labels_match_the_drawn_text():
    for task in GAME_TASKS:
        batch = generate_batch(task, 400, seed=2)
        h, w = GAME_TASKS[task][0]
        other = len(class_names(task)) - 1
        for label, plan in zip(batch.labels.tolist(), batch.plans, strict=True):
            if plan.cut or not plan.text:
                assert label == other
            else:
                assert classify_text(task, plan.text) == label, (task, plan.text, label)
                if label != other:  # a valid text is drawn whole
                    th, tw = _text_mask(plan.font, plan.digit_height, plan.text).shape
                    assert 0 <= plan.x and plan.x + tw <= w and 0 <= plan.y and plan.y + th <= h, plan


@pytest.mark.parametrize(
    "task,text,name",
    [
        ("game-lol-gold-fraction", "12.7k", "7"),
        ("game-lol-gold-fraction", "12.7", "other"),
        ("game-lol-gold-int", "5.3k", "5"),
        ("game-lol-gold-int", "05.3k", "05"),
        ("game-lol-gold-int", "123.4k", "other"),
        ("game-lol-timer-minutes", "07:59", "07"),
        ("game-lol-timer-minutes", "61:00", "other"),
        ("game-apex-squad-count", "20", "20"),
        ("game-apex-squad-count", "21", "other"),
        ("game-sot-coin-count", "0", "other"),
        ("game-sot-coin-count", "14", "14"),
        ("game-sot-timer", "25", "25"),
    ],
)
def test_rendering_a_known_string_gives_its_class(task, text, name):
    image, label = render_text(task, text, font=1, digit_height=9, seed=4)
    assert class_names(task)[label] == name
    assert image.shape == (3, *GAME_TASKS[task][0]) and image.dtype == np.uint8


def test_rendered_text_is_where_the_text_differs():
    """Same seed, same size: two strings differing in one digit differ only around that digit."""
    a, _ = render_text("game-lol-gold-fraction", "12.3k", font=0, digit_height=10, seed=9)
    b, _ = render_text("game-lol-gold-fraction", "12.8k", font=0, digit_height=10, seed=9)
    cols = np.nonzero(np.abs(a.astype(int) - b.astype(int)).max(axis=(0, 1)) > 40)[0]
    assert cols.size > 0 and cols.min() > 52 // 2 - 5, "only the fraction digit, right of centre, changes"
    with pytest.raises(DataError, match="cannot draw"):
        render_text("game-sot-timer", "1€")
    with pytest.raises(DataError, match="larger than"):
        render_text("game-sot-timer", "12345", digit_height=14)


def test_fonts_held_out_of_training():
    k = len(GAME_FONTS)
    assert split_fonts("train", 2) == tuple(range(k - 2)) and split_fonts("test", 2) == (k - 2, k - 1)
    train = generate_batch("game-apex-squad-count", 300, fonts=split_fonts("train", 2))
    assert {p.font for p in train.plans if p.text} <= set(range(k - 2))
    data = load_data("game-apex-squad-count?n_test=50&holdout_fonts=2", "test", seed=1)
    assert len(data) == 50
    with pytest.raises(DataError, match="holdout_fonts"):
        split_fonts("train", k)


def test_cli_game_writes_npz_meta_folder_and_preview(tmp_path, capsys):
    out = tmp_path / "g"
    argv = ["data", "game", "game-lol-gold-fraction", "--n", "120", "--out", str(out), "--seed", "2",
            "--preview", str(tmp_path / "p.png"), "--folder"]
    assert main(argv) == 0
    assert "wrote 120 images" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["class_names"][-1] == "other" and meta["seed"] == 2
    data = load_data(f"npz:{out}", "train")
    assert data.images.shape == (120, 3, 22, 52)
    assert sum(1 for _ in (out / "train").rglob("*.png")) == 120 and (out / "train" / "other").is_dir()
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["data", "game", "game-lol-gold", "--n", "5", "--out", str(out)]) == 2
    assert "unknown game task 'game-lol-gold'" in capsys.readouterr().err
