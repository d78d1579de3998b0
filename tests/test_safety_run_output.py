"""`foldedcnn run` and its output folder: one job at a time, a rerun never mixes or mistakes results,
a short video is reported as truncated, a full disk stops the job cleanly and a rerun resumes."""

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from video_clips import write_square_clip

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.cli import main
from foldedcnn.folded import FoldedModel
from foldedcnn.label import _chunk_store
from foldedcnn.label._output_dir import exclusive_output

ROI = (8, 8, 64, 48)
ARGS = ["--backend", "torch", "--no-progress", "--batch", "8", "--chunk-frames", "16"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {"a": write_square_clip(d / "a.mp4", 40), "b": write_square_clip(d / "b.mp4", 20)}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    out = {}
    for fold in (1, 4):
        torch.manual_seed(fold)
        model = FoldedModel.from_zoo("noscope-coral", fold).eval()
        out[fold] = save_checkpoint(d / f"f{fold}.safetensors", model, class_names=["absent", "present"],
                                    extra={"roi": list(ROI)})
    return out


def run(*argv):
    return main(["run", *map(str, argv), *ARGS])


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("change", [["--stride", "7"], ["--roi", "0", "0", "32", "32"], ["--uncertain", "0.0", "0.1"],
                                    "checkpoint"])
def test_a_rerun_with_other_settings_never_returns_the_old_labels(clips, checkpoints, tmp_path, change, capsys):
    assert run(checkpoints[4], clips["a"], "--out", tmp_path) == 0
    before = (tmp_path / "a.csv").read_text()
    ckpt, extra = (checkpoints[1], []) if change == "checkpoint" else (checkpoints[4], change)
    assert run(ckpt, clips["a"], "--out", tmp_path, *extra) == 1
    (video,) = summary(tmp_path)["videos"]
    assert "made with other settings" in video["error"] and "--overwrite" in video["error"]
    assert (tmp_path / "a.csv").read_text() == before  # refused, nothing mixed
    capsys.readouterr()
    assert run(ckpt, clips["a"], "--out", tmp_path, *extra, "--overwrite") == 0
    fresh = tmp_path / "fresh"
    assert run(ckpt, clips["a"], "--out", fresh, *extra) == 0
    assert (tmp_path / "a.csv").read_text() == (fresh / "a.csv").read_text() != before


def test_a_new_recording_at_the_same_path_is_not_given_the_old_labels(checkpoints, tmp_path):
    """A camera's file replaced by today's recording, labelled into the same folder: the old CSV would have been
    returned as done."""
    video = write_square_clip(tmp_path / "cam.mp4", 40)
    out = tmp_path / "out"
    assert run(checkpoints[4], video, "--out", out) == 0
    before = (out / "cam.csv").read_text()
    write_square_clip(video, 24)  # same path, another recording
    assert run(checkpoints[4], video, "--out", out) == 1
    (result,) = summary(out)["videos"]
    assert "not the one labelled there (another recording at the same path, or one still being" in result["error"]
    assert (out / "cam.csv").read_text() == before
    assert run(checkpoints[4], video, "--out", out, "--overwrite") == 0
    assert len((out / "cam.csv").read_text().splitlines()) == 25


def _age(path: Path, seconds: float) -> Path:
    """`path` as last modified `seconds` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def _half_written(path: Path, recording: Path) -> Path:
    """`path` holding the first half of `recording`, as a recorder still writing it leaves it (an MP4's index, at
    its end, not there yet)."""
    path.write_bytes(recording.read_bytes()[: recording.stat().st_size // 2])
    return path


def test_a_recording_still_being_written_is_left_out_and_labelled_once_closed(checkpoints, tmp_path, capsys):
    """A camera writes its current recording into the folder the job labels. Taken as it is, that MP4 fails (no
    index yet); a TS or MKV would get a CSV without its end, and a later run would refuse the grown file (the test
    above). --min-age leaves out the files modified in the last SECONDS before reading them, and the same command
    labels them once the recorder has closed them: the CSV of the whole recording, nothing of the half."""
    cams, full = tmp_path / "cams", write_square_clip(tmp_path / "full.mp4", 24)
    cams.mkdir()
    _age(write_square_clip(cams / "0900.mp4", 40), 3600)
    recording = _half_written(cams / "1000.mp4", full)
    assert run(checkpoints[4], cams, "--out", tmp_path / "eager") == 1  # without it: the half recording fails
    assert "1000.mp4" in summary(tmp_path / "eager")["videos"][1]["video"]
    assert summary(tmp_path / "eager")["videos"][1]["error"]
    capsys.readouterr()
    out = tmp_path / "out"
    assert run(checkpoints[4], cams, "--out", out, "--min-age", "60") == 0
    earlier, later = summary(out)["videos"]
    assert earlier["frames"] == 40 and earlier["skipped"] is None and earlier["error"] is None
    assert re.fullmatch(r"modified \d s ago, within --min-age 60 s: still being written\? a later run labels it",
                        later["skipped"]), later["skipped"]
    assert later["error"] is None and later["frames"] == 0
    assert (summary(out)["failed"], summary(out)["skipped"]) == (0, 1)
    assert not (out / "1000.csv").exists() and not (out / ".parts" / "1000").exists()
    assert f"skipped {recording}: modified" in capsys.readouterr().out
    _age(recording, 0).write_bytes(full.read_bytes())  # the recorder goes on, then closes it
    _age(recording, 120)
    assert run(checkpoints[4], cams, "--out", out, "--min-age", "60") == 0
    earlier, later = summary(out)["videos"]
    assert (earlier["frames"], later["frames"], later["skipped"], summary(out)["skipped"]) == (40, 24, None, 0)
    assert run(checkpoints[4], full, "--out", tmp_path / "alone") == 0
    assert (out / "1000.csv").read_text() == (tmp_path / "alone" / "full.csv").read_text()


def test_the_report_and_the_frames_export_name_a_video_the_run_left_out(clips, checkpoints, tmp_path, capsys):
    from foldedcnn.label.report import write_report

    young = write_square_clip(tmp_path / "young.mp4", 20)
    out = tmp_path / "out"
    assert run(checkpoints[4], _age(clips["b"], 600), young, "--out", out, "--min-age", "300") == 0
    page = write_report(out).path.read_text()
    assert "Skipped by this run: modified " in page and "skipped: modified " in page  # its section, the overview
    capsys.readouterr()
    assert main(["frames", str(out), "--out", str(tmp_path / "frames"), "--which", "all", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"skipped {young}: the run left it out (modified " in printed and "of 1 outputs" in printed


def _results(out: Path) -> list[dict]:
    """What summary.json says of each output's rows (a finished video counted again: its CSV read back)."""
    kept = ("video", "csv", "frames", "positives", "uncertain", "labels", "undecodable", "expected_frames",
            "expected_seconds", "truncated", "missing_frames", "gaps_s", "error")
    return [{k: video[k] for k in kept} for video in summary(out)["videos"]]


def test_a_rerun_over_finished_videos_reads_none_of_them_nor_their_csvs(clips, checkpoints, tmp_path, monkeypatch):
    """A cron job over a camera's folder plans every video again each time: what it read of each (FFmpeg's probe,
    which decodes an H.264 video's first frames, and the 2 MiB content fingerprint) and what each finished CSV's
    rows say are kept beside its output with the status of the file they came from, and read again only once that
    file changes. A truncated video stays truncated, with its error; a CSV edited since is counted again."""
    from foldedcnn.label import _job_video, _plan

    cut = _age(_cut(write_square_clip(tmp_path / "whole.avi", 60), tmp_path / "cut.avi", 0.7), 600)
    videos = [_age(clips["a"], 600), _age(clips["b"], 600), cut]
    out = tmp_path / "out"
    assert run(checkpoints[4], *videos, "--out", out) == 1
    first = _results(out)
    assert first[2]["truncated"] and first[2]["error"].startswith("truncated: decoded")
    with monkeypatch.context() as m:
        m.setattr(_plan, "read_for_plan", lambda item: pytest.fail(f"{item} read"))
        m.setattr(_job_video.RowTally, "add_file", lambda self, path: pytest.fail(f"{path} read"))
        assert run(checkpoints[4], *videos, "--out", out) == 1
        assert _results(out) == first
    lines = (out / "b.csv").read_text().splitlines(keepends=True)
    (out / "b.csv").write_text("".join(lines[:-1]))  # a row lost since: counted again (and now short)
    changed = _age(write_square_clip(tmp_path / "c.mp4", 20), 600)  # another video: read
    assert run(checkpoints[4], *videos, changed, "--out", out) == 1
    again = _results(out)
    assert again[0] == first[0] and again[2] == first[2] and again[3]["frames"] == 20
    assert again[1]["frames"] == first[1]["frames"] - 1 and again[1]["truncated"]
    kept = out / ".parts" / "a" / "counts.json"  # a record of another shape, for the CSV as it is: counted again
    kept.write_text(json.dumps({**json.loads(kept.read_text()), "kept": [1, 2]}))
    assert run(checkpoints[4], *videos, changed, "--out", out) == 1
    assert _results(out) == again


def test_a_video_changed_in_place_with_its_modification_time_put_back_is_read_again(checkpoints, tmp_path):
    """The same size, the same modification time (a tool that keeps it): its change time moved, so what was kept
    of it is not used, and the fingerprint refuses the old labels as for any other recording."""
    video = _age(write_square_clip(tmp_path / "cam.mp4", 40), 600)
    out = tmp_path / "out"
    assert run(checkpoints[4], video, "--out", out) == 0
    stat, data = video.stat(), bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0xFF
    time.sleep(0.01)
    video.write_bytes(bytes(data))
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run(checkpoints[4], video, "--out", out) == 1
    assert "not the one labelled there" in summary(out)["videos"][0]["error"]


def test_an_output_written_before_the_content_fingerprint_is_still_this_jobs(clips, checkpoints, tmp_path):
    assert run(checkpoints[4], clips["a"], "--out", tmp_path) == 0
    config = tmp_path / ".parts" / "a" / "config.json"
    stored = json.loads(config.read_text())
    config.write_text(json.dumps({k: v for k, v in stored.items() if k != "video_content"}))  # an older foldedcnn's
    assert run(checkpoints[4], clips["a"], "--out", tmp_path) == 0  # done: not refused, not relabelled
    assert summary(tmp_path)["videos"][0]["error"] is None
    assert json.loads(config.read_text()) == stored  # and it records the fingerprint from now on


def test_a_csv_without_fingerprint_is_not_taken_for_done(clips, checkpoints, tmp_path):
    (tmp_path / "a.csv").write_text("frame,time_s\n0,0.0\n")  # e.g. written by an older foldedcnn
    assert run(checkpoints[4], clips["a"], "--out", tmp_path) == 1
    assert "records no job fingerprint" in summary(tmp_path)["videos"][0]["error"]
    assert run(checkpoints[4], clips["a"], "--out", tmp_path, "--overwrite") == 0
    assert len((tmp_path / "a.csv").read_text().splitlines()) == 41


def test_a_second_job_on_the_same_out_fails_at_once_in_one_line(clips, checkpoints, tmp_path, capsys):
    with exclusive_output(tmp_path):  # the flock a running job holds
        assert run(checkpoints[4], clips["a"], "--out", tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another foldedcnn job is writing to" in err
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "summary.json").exists()
    assert run(checkpoints[4], clips["a"], "--out", tmp_path) == 0  # released: the next job runs


@pytest.mark.slow  # starts a second Python process (about 10 s on an idle 2-core machine)
def test_two_real_jobs_on_one_out_the_second_stops_and_the_first_completes(checkpoints, tmp_path, capsys):
    long = write_square_clip(tmp_path / "long.mp4", 100)
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "foldedcnn", "run", str(checkpoints[4]), str(long), "--out",
                              str(out), *ARGS], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / ".parts" / "long" / "00000000.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)  # paused mid-job (holding its lock), so the race cannot be lost
    try:
        assert first.poll() is None and not (out / "long.csv").exists()
        assert run(checkpoints[4], long, "--out", out) == 2
    finally:
        first.send_signal(signal.SIGCONT)
    one_line = capsys.readouterr().err.strip()
    assert len(one_line.splitlines()) == 1 and "another foldedcnn job is writing to" in one_line
    assert first.wait(timeout=120) == 0, first.stderr.read()
    rows = (out / "long.csv").read_text().splitlines()
    assert len(rows) == 101 and [int(r.split(",")[0]) for r in rows[1:]] == list(range(100))


def test_out_that_is_a_file_or_cannot_be_created_is_one_line(clips, checkpoints, tmp_path, capsys):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    for out, message in ((afile, "is a file, not a folder"), (afile / "sub", "cannot create --out")):
        assert run(checkpoints[4], clips["a"], "--out", out) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err


def test_disk_full_stops_cleanly_keeps_finished_chunks_and_resumes(clips, checkpoints, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    assert run(checkpoints[4], clips["a"], clips["b"], "--out", reference) == 0
    out = tmp_path / "out"
    real_write = _chunk_store.atomic_write_text
    written = []

    def full_after_two_chunks(path, text):
        if Path(path).name != "config.json":
            if len(written) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            written.append(path)
        real_write(path, text)

    monkeypatch.setattr(_chunk_store, "atomic_write_text", full_after_two_chunks)
    # one decoder, segments with the most frames to decode first: a's rows 0-23 (a keyframe at 24; chunk 0 whole),
    # then b's (its chunk 0, then the disk is full), then a's rest
    assert run(checkpoints[4], clips["a"], clips["b"], "--out", out, "--workers", "1") == 1
    a, b = summary(out)["videos"]
    assert b["error"].startswith("cannot write") and "No space left on device" in b["error"] and "resumes" in b["error"]
    assert a["error"] == f"not finished: {b['error']}"
    for name in ("a", "b"):
        assert sorted(p.name for p in (out / ".parts" / name).glob("0*.csv")) == ["00000000.csv"]
    monkeypatch.setattr(_chunk_store, "atomic_write_text", real_write)
    assert run(checkpoints[4], clips["a"], clips["b"], "--out", out) == 0
    a, b = summary(out)["videos"]
    assert a["resumed_at_frame"] == 16 and b["resumed_at_frame"] == 16
    for name in ("a.csv", "b.csv"):
        assert (out / name).read_text() == (reference / name).read_text()


def _cut(video: Path, dest: Path, fraction: float) -> Path:
    data = video.read_bytes()
    dest.write_bytes(data[: int(len(data) * fraction)])
    return dest


def test_a_truncated_video_is_reported_with_both_counts_and_exit_1(checkpoints, tmp_path, capsys):
    whole = write_square_clip(tmp_path / "whole.avi", 60)  # AVI declares its frame count in the header
    short = _cut(whole, tmp_path / "short.avi", 0.7)
    assert run(checkpoints[4], whole, short, "--out", tmp_path / "out") == 1
    ok, cut = summary(tmp_path / "out")["videos"]
    assert ok["error"] is None and ok["frames"] == ok["expected_frames"] == 60 and not ok["truncated"]
    assert cut["truncated"] and cut["expected_frames"] == 60 and 0 < cut["frames"] < 60
    assert f"decoded {cut['frames']} of the 60 frames" in cut["error"]
    assert "TRUNCATED" in capsys.readouterr().out
    # a rerun (the CSV is already there) says the same, it does not turn into "ok"
    assert run(checkpoints[4], short, "--out", tmp_path / "out") == 1
    assert summary(tmp_path / "out")["videos"][0]["truncated"]


def test_vtest_cut_in_half_is_truncated(checkpoints, tmp_path):
    from foldedcnn.data import vtest_path
    from foldedcnn.data.types import DataError

    try:
        vtest = vtest_path()
    except DataError:
        pytest.skip("vtest.avi is not installed (make system-deps)")
    half = _cut(vtest, tmp_path / "vtest-half.avi", 0.5)
    assert main(["run", str(checkpoints[4]), str(half), "--out", str(tmp_path / "out"), "--backend", "torch",
                 "--no-progress", "--roi", "480", "260", "140", "140", "--stride", "4"]) == 1
    (video,) = summary(tmp_path / "out")["videos"]
    assert video["truncated"] and video["expected_frames"] == 199 and video["frames"] == 100


@pytest.mark.parametrize("flags,needle", [
    (["--batch", "100"], "--chunk-frames 1024 must be a multiple of --batch 100 .* e.g. 64"),
    (["--batch", "0"], "--batch must be >= 1, got 0"),
    (["--nvdec-sessions", "0"], "--nvdec-sessions must be >= 1, got 0"),
    (["--min-age", "-1"], "--min-age must be a number of seconds >= 0, got -1.0"),
    (["--min-age", "nan"], "--min-age must be a number of seconds >= 0, got nan"),
])
def test_bad_job_settings_are_one_line_before_any_output(clips, checkpoints, tmp_path, capsys, flags, needle):
    argv = ["run", str(checkpoints[1]), str(clips["a"]), "--out", str(tmp_path / "out"), "--roi", *map(str, ROI),
            "--backend", "torch", "--no-progress", *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(needle, err), err
    assert not (tmp_path / "out").exists()
