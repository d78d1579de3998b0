"""`foldedcnn report`: one self-contained HTML page, rendered in headless Chromium with every image loaded."""

import csv
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from video_clips import write_square_clip

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.cli import main
from foldedcnn.folded import FoldedModel

pytestmark = pytest.mark.usefixtures("one_thread")

ROI = (8, 8, 64, 48)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# counts the page's images once loaded; a deliberately broken image proves the count can fall short
PROBE = ('<img id="broken" src="data:image/png;base64,AAAA"><script>window.addEventListener("load", () => {'
         'const imgs = [...document.images]; document.body.dataset.images = imgs.length;'
         'document.body.dataset.loaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length; });</script>')


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A `foldedcnn run` over a synthetic clip whose thresholds put a third of the frames in each band."""
    d = tmp_path_factory.mktemp("report")
    clip = write_square_clip(d / "square.mp4", 60)
    torch.manual_seed(0)
    ckpt = save_checkpoint(d / "coral.safetensors", FoldedModel.from_zoo("noscope-coral", 2).eval(),
                           class_names=["empty", "square"], extra={"roi": list(ROI)})
    assert main(["run", str(ckpt), str(clip), "--out", str(d / "first"), "--backend", "torch", "--no-progress"]) == 0
    with open(d / "first" / "square.csv", newline="") as f:
        scores = np.array([float(r["score"]) for r in csv.DictReader(f)])
    lo, hi = np.quantile(scores, [1 / 3, 2 / 3])
    out = d / "labels"
    assert main(["run", str(ckpt), str(clip), "--out", str(out), "--uncertain", f"{lo:.7f}", f"{hi:.7f}",
                 "--backend", "torch", "--no-progress"]) == 0
    return out


def _chromium(*args):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--hide-scrollbars", *map(str, args)], capture_output=True, text=True, timeout=120)


def test_report_is_one_self_contained_page(run_dir, capsys):
    assert main(["report", str(run_dir), "--thumbnails", "5"]) == 0
    assert "embedded images: 11" in capsys.readouterr().out  # a timeline + 5 positive + 5 uncertain thumbnails
    page = (run_dir / "report.html").read_text()
    sources = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert len(sources) == 11 and all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,"))
                                      for s in sources)
    assert "http://" not in page and "https://" not in page and "<link" not in page  # nothing fetched
    assert "Positive frames (certain)" in page and "Uncertain frames (sent to the reference model)" in page
    assert "square.mp4" in page and "Thresholds set by --uncertain" in page


def test_report_of_a_folder_without_a_run_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "has no summary.json" in capsys.readouterr().err


@pytest.mark.slow  # two Chromium launches: about 5 s idle, 20 s on a loaded 2-core machine
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make system-deps installs it)")
def test_report_renders_in_chromium_with_every_image_loaded(run_dir, tmp_path):
    page = tmp_path / "report.html"
    assert main(["report", str(run_dir), "--out", str(page)]) == 0
    shot = tmp_path / "shot.png"
    done = _chromium(f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1300,1600",
                     page.as_uri())
    assert shot.is_file(), done.stderr
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (1600, 1300)
    assert pixels.std() > 20 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1000  # not blank: text, plots, frames
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    done = _chromium(f"--user-data-dir={tmp_path / 'profile2'}", "--virtual-time-budget=5000", "--dump-dom",
                     probe.as_uri())
    body = re.search(r'<body data-images="(\d+)" data-loaded="(\d+)"', done.stdout)
    assert body, done.stdout[-500:] + done.stderr[-500:]
    images, loaded = map(int, body.groups())
    assert images == page.read_text().count("<img ") + 1 and loaded == images - 1  # all but the broken probe


DIGITS = ["0", "1", "2", "3", "4", "5"]  # a HUD reader's classes


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory):
    """A `foldedcnn run` of a six-class model whose threshold leaves about half the frames certain."""
    d = tmp_path_factory.mktemp("digits")
    clip = write_square_clip(d / "square.mp4", 60)
    torch.manual_seed(1)
    ckpt = save_checkpoint(d / "digits.safetensors",
                           FoldedModel.from_zoo("noscope-coral", 2, num_classes=len(DIGITS)).eval(),
                           class_names=DIGITS, extra={"roi": list(ROI)})
    assert main(["run", str(ckpt), str(clip), "--out", str(d / "first"), "--backend", "torch", "--no-progress"]) == 0
    with open(d / "first" / "square.csv", newline="") as f:
        top = np.array([float(r["score"]) for r in csv.DictReader(f)])
    out = d / "labels"
    argv = ["run", str(ckpt), str(clip), "--out", str(out), "--uncertain", "0", f"{np.median(top):.7f}",
            "--backend", "torch", "--no-progress"]
    return out, argv


def test_a_multiclass_run_reports_labels_not_positives(digit_run, capsys):
    out, argv = digit_run
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "frames whose top-class probability is below" in printed and "only the high threshold is used" in printed
    assert " positive" not in printed and ", labels " in printed
    with open(out / "square.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classes"] == DIGITS
    (video,) = summary["videos"]
    counts = video["labels"]
    assert counts == {k: sum(r["label"] == k for r in rows) for k in counts} and sum(counts.values()) == 60
    assert list(counts.values()) == sorted(counts.values(), reverse=True)  # most frequent first
    sure = {r["label"] for r in rows if r["uncertain"] == "0"}
    assert 1 < len(sure) and 0 < video["uncertain"] < 60

    assert main(["report", str(out), "--thumbnails", "8"]) == 0
    page = (out / "report.html").read_text()
    assert "Labelled frames (certain)" in page and "Positive frames" not in page
    assert "<th>labels</th>" in page and "6-class model" in page
    shown = set(re.findall(r'<figure class="labelled">.*?label <b>([^<]*)</b>', page))
    assert shown == sure  # every label the model was sure of has a thumbnail (8 leave room for all)


@settings(max_examples=200, deadline=None)
@given(labels=st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", ""]), st.booleans()), max_size=60),
       limit=st.integers(0, 20))
def test_thumbnails_by_label_cover_every_label_the_limit_allows(labels, limit):
    """... and never a frame that did not decode (label "": its packets damaged)."""
    from foldedcnn.label._labels_csv import FrameLabels
    from foldedcnn.label.report import _by_label

    n = len(labels)
    names = np.array([name for name, _ in labels], dtype=object)
    decoded = names != ""
    unsure = np.array([u for _, u in labels], dtype=bool) & decoded
    frames = FrameLabels(list("abcd"), np.arange(n), np.arange(n) / 25, np.zeros(n), names, ~unsure & decoded, unsure,
                         decoded)
    chosen = _by_label(frames, limit)
    assert list(chosen) == sorted(set(chosen.tolist())) and not unsure[chosen].any() and decoded[chosen].all()
    assert len(chosen) == min(limit, int((~unsure & decoded).sum()))
    seen = set(names[~unsure & decoded])
    assert set(names[chosen]) == seen if limit >= len(seen) else len(set(names[chosen])) == limit


def test_a_copied_run_folder_reports_its_own_csvs_and_a_missing_one_is_named(run_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "square.csv").write_text((copy / "square.csv").read_text().replace(",square,", ",empty,"))
    assert main(["report", str(copy), "--thumbnails", "3"]) == 0
    assert "Positive frames (certain) <small>0 of 0</small>" in (copy / "report.html").read_text()  # the copy's
    (copy / "square.csv").unlink()
    assert main(["report", str(copy)]) == 0
    assert "Its CSV square.csv is missing from" in (copy / "report.html").read_text()


@given(st.lists(st.tuples(st.integers(0, 50), st.sampled_from(["ok", "failed", "truncated"])), max_size=40),
       st.integers(0, 10))
def test_a_report_shows_every_failure_and_the_most_uncertain_of_the_rest(outputs, limit):
    from foldedcnn.label.report import shown_outputs

    videos = [{"uncertain": n, "error": None if kind == "ok" else "x", "truncated": kind == "truncated"}
              for n, kind in outputs]
    shown = shown_outputs(videos, limit)
    failed = [i for i, (_, kind) in enumerate(outputs) if kind == "failed"]
    rest = [i for i in range(len(outputs)) if i not in failed]
    assert shown == sorted(shown) and set(failed) <= set(shown)
    picked = [i for i in shown if i not in failed]
    assert len(picked) == min(limit, len(rest))
    left = [i for i in rest if i not in picked]
    assert all(videos[p]["uncertain"] >= videos[o]["uncertain"] for p in picked for o in left)


def test_a_report_of_many_outputs_says_how_many_it_leaves_out(run_dir, tmp_path, capsys):
    assert main(["report", str(run_dir), "--videos", "0", "--out", str(tmp_path / "r.html")]) == 0
    assert "(videos: 1, 0 shown, embedded images: 0)" in capsys.readouterr().out
    assert "1 more outputs with fewer uncertain frames are not shown (--videos 0)" in (tmp_path / "r.html").read_text()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.01, 5.0), min_size=2, max_size=60), st.data())
def test_the_score_line_breaks_at_every_gap_and_only_there(steps, data):
    """The timeline's score line has a break (a NaN point) between the rows either side of each stretch the file holds
    no frames of (summary.json's gaps_s), and nowhere else: the points are the rows' otherwise."""
    from foldedcnn.label._report_images import broken_at

    x = np.cumsum(steps)
    y = np.linspace(0, 1, len(x))
    after = sorted(data.draw(st.sets(st.integers(1, len(x) - 1), max_size=5)))
    bx, by = broken_at(x, y, [[x[i - 1], x[i]] for i in after])
    assert len(bx) == len(x) + len(after)
    assert [i - k for k, i in enumerate(np.flatnonzero(np.isnan(bx)).tolist())] == after  # before row i, each
    assert np.array_equal(bx[~np.isnan(bx)], x) and np.array_equal(by[~np.isnan(by)], y)
