"""`foldedcnn report`: one self-contained HTML page, rendered in headless Chromium with every image loaded."""

import csv
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
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
