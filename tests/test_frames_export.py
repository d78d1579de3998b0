"""`foldedcnn frames`: a run's uncertain (or positive, or all) frames as images with an index CSV."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from video_clips import write_square_clip

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.cli import main
from foldedcnn.data.video import frames_at
from foldedcnn.folded import FoldedModel
from foldedcnn.label._labels_csv import read_labels

ROI, ROI2 = (8, 8, 64, 48), (24, 10, 40, 40)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run of an untrained model over two clips (one of them missing), two regions, every frame uncertain."""
    d = tmp_path_factory.mktemp("frames")
    torch.manual_seed(0)
    ckpt = save_checkpoint(d / "coral.safetensors", FoldedModel.from_zoo("noscope-coral", 4).eval(),
                           class_names=["absent", "present"])
    clip = write_square_clip(d / "clip.mp4", 30)
    argv = ["run", str(ckpt), str(clip), str(d / "missing.mp4"), "--out", str(d / "run"), "--roi", *map(str, ROI),
            "--roi", *map(str, ROI2), "--uncertain", "0", "1", "--backend", "torch", "--no-progress"]
    assert main(argv) == 1  # the missing video fails alone
    return d / "run"


def _index(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_uncertain_regions_come_out_as_decoded_with_an_index_to_join(run_dir, tmp_path, capsys):
    out = tmp_path / "frames"
    assert main(["frames", str(run_dir), "--out", str(out), "--format", "png", "--no-progress"]) == 1
    text = capsys.readouterr().out
    assert "skipped" in text and "missing.mp4" in text and "wrote 60 new of 60 uncertain frames of 2 outputs" in text
    rows = _index(out / "frames.csv")
    assert [r["image"] for r in rows[:2]] == ["clip.region1/00000000.png", "clip.region2/00000000.png"]
    decoded = {f.index: f.rgb for f in frames_at(run_dir.parent / "clip.mp4", range(30))}
    for r in rows:
        x, y, w, h = ROI if r["region"] == "1" else ROI2
        image = np.asarray(Image.open(out / r["image"]))
        assert np.array_equal(image, decoded[int(r["frame"])][y:y + h, x:x + w])  # PNG: the decoded pixels
    labels = read_labels(run_dir / "clip.region2.csv")
    mine = [r for r in rows if r["region"] == "2"]
    assert [float(r["score"]) for r in mine] == pytest.approx(labels.score.tolist(), abs=1e-6)
    assert main(["frames", str(run_dir), "--out", str(out), "--format", "png", "--no-progress"]) == 1
    assert "wrote 0 new of 60" in capsys.readouterr().out  # a rerun resumes: nothing written twice


def test_whole_frames_and_the_positive_ones_only(run_dir, tmp_path, capsys):
    assert main(["frames", str(run_dir), "--out", str(tmp_path / "all"), "--crop", "frame", "--no-progress"]) == 1
    first = Image.open(tmp_path / "all" / "clip.region1" / "00000000.jpg")
    assert first.size == (96, 64) and first.format == "JPEG"
    assert main(["frames", str(run_dir), "--out", str(tmp_path / "pos"), "--which", "positive", "--no-progress"]) == 1
    assert "wrote 0 new of 0 positive frames" in capsys.readouterr().out.splitlines()[-1]  # all were uncertain
    assert _index(tmp_path / "pos" / "frames.csv") == []
    assert main(["frames", str(run_dir), "--out", str(tmp_path / "sure"), "--which", "certain", "--no-progress"]) == 1
    assert "wrote 0 new of 0 certain frames" in capsys.readouterr().out.splitlines()[-1]


def test_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    assert main(["frames", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "has no summary.json: pass the --out folder of a `foldedcnn run`" in err and len(err.splitlines()) == 1
