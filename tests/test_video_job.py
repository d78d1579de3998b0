import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from video_clips import (
    damage_avi_chunk_headers,
    damage_avi_index,
    damage_packets,
    drop_ts_packets,
    trim_start,
    wrap_ts_timestamps,
    write_empty_clip,
    write_raw_stream_clip,
    write_size_switch_clip,
    write_square_clip,
    write_turned_clip,
)

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.cli import main
from foldedcnn.data.video import VideoError, VideoIndex
from foldedcnn.folded import FoldedModel
from foldedcnn.label import _plan as plan
from foldedcnn.label import job

ROI = (8, 8, 64, 48)
ROI2 = (24, 10, 40, 40)  # a second region: it overlaps the first and the square's path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {"short": write_square_clip(d / "short.mp4", 37), "long": write_square_clip(d / "long.mp4", 300)}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = FoldedModel.from_zoo("noscope-coral", 4).eval()
    path = tmp_path_factory.mktemp("ckpt") / "coral-f4.safetensors"
    return save_checkpoint(path, model, class_names=["absent", "present"], extra={"roi": list(ROI)})


def _run(argv):
    return main(["run", *map(str, argv), "--backend", "torch", "--no-progress"])


def _rows(csv: Path):
    lines = csv.read_text().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


def test_default_batch_follows_the_engine_device(clips, checkpoint, tmp_path):
    from foldedcnn.label.job import default_batch

    assert default_batch(gpu=True) == 256 and default_batch(gpu=False) == 128
    assert _run([checkpoint, clips["short"], "--out", tmp_path]) == 0  # on this CPU: 128, recorded with the output
    assert json.loads((tmp_path / ".parts" / "short" / "config.json").read_text())["batch"] == 128


def test_one_row_per_frame_and_summary(clips, checkpoint, tmp_path, capsys):
    assert _run([checkpoint, clips["short"], "--out", tmp_path, "--batch", "8", "--chunk-frames", "16"]) == 0
    head, rows = _rows(tmp_path / "short.csv")
    assert head == ["frame", "time_s", "p_absent", "p_present", "score", "label", "uncertain"]
    assert [int(r[0]) for r in rows] == list(range(37))
    for r in rows:
        p0, p1 = float(r[2]), float(r[3])
        assert abs(p0 + p1 - 1) < 2e-6 and r[4] == r[3]
        assert r[5] == ("present" if p1 > p0 else "absent")
        assert r[6] == str(int(0.2 < p1 < 0.8))
    times = [float(r[1]) for r in rows]
    assert times == sorted(times) and times[1] == pytest.approx(0.04)
    summary = json.loads((tmp_path / "summary.json").read_text())
    (video,) = summary["videos"]
    assert summary["failed"] == 0 and video["frames"] == 37 and video["error"] is None
    assert video["positives"] == sum(r[5] == "present" for r in rows)
    assert video["uncertain"] == sum(r[6] == "1" for r in rows)
    assert video["decode_fps"] > 0 and video["model_fps"] > 0 and video["end_to_end_fps"] > 0
    # one video: its end-to-end time is the job's (from the job's start to its CSV), not from its first batch
    assert summary["frames_per_s"] <= video["end_to_end_fps"] <= 1.25 * summary["frames_per_s"]
    # chunks merged, the fingerprint kept, and what the rerun need not read again (the probe: of a file older than 2 s)
    kept = {p.name for p in (tmp_path / ".parts" / "short").iterdir()}
    assert kept - {"probe.json"} == {"config.json", "counts.json"}
    assert _run([checkpoint, clips["short"], "--out", tmp_path, "--batch", "8", "--chunk-frames", "16"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("nothing left to label: every output was done before)")


def test_a_raw_stream_without_timestamps_gets_times_from_its_frame_rate(checkpoint, tmp_path):
    """A camera's raw .h264 dump has no timestamps: each frame's time is its number over the frame rate (it was
    0 for every frame), the same with the video split among decoders; probed as a bare stream (not for NVDEC)."""
    from foldedcnn.data.video import probe_video

    clip = write_raw_stream_clip(tmp_path / "camera.h264", 60)
    assert probe_video(clip).container == "h264"
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        assert _run([checkpoint, clip, "--out", out, "--batch", "8", "--chunk-frames", "16", "--workers", workers]) == 0
        _, rows = _rows(out / "camera.csv")
        assert [int(r[0]) for r in rows] == list(range(60))
        assert [r[1] for r in rows] == [f"{i / 25:.6f}" for i in range(60)]
    assert (tmp_path / "out1" / "camera.csv").read_text() == (tmp_path / "out2" / "camera.csv").read_text()


_CLOSED_GOPS = {"g": "25", "bf": "2", "flags": "+cgop", "sc_threshold": "1000000000"}  # MPEG-2: each I-picture first


@pytest.mark.parametrize("codec,suffix,container,options,keyframes", [
    ("libx264", "h264", "h264", {"g": "25", "bf": "2", "preset": "ultrafast"}, [0, 25, 50]),
    ("libx265", "hevc", "hevc", {"g": "25", "preset": "ultrafast", "x265-params": "log-level=none:open-gop=0"},
     [0, 25, 50]),  # IDR pictures only
    ("libx264", "avi", None, {"g": "25", "bf": "2", "preset": "ultrafast"}, [0, 25, 50]),  # decode-order counters
    ("mpeg2video", "m2v", "mpeg2video", _CLOSED_GOPS, [0, 25, 50]),  # a bare MPEG-2 stream: timestamps its parser made
    ("mpeg4", "m4v", "m4v", {"g": "25"}, [0, 25, 50]),  # a bare MPEG-4 Part 2 stream without B-frames: its I-VOPs
    ("mjpeg", "mjpeg", "mjpeg", {"strict": "-1"}, [0, 1, 2]),  # an IP camera's MJPEG dump: every frame a keyframe
    ("libsvtav1", "obu", "obu", {"g": "25", "preset": "12"}, [0, 25, 50]),  # bare AV1: hidden frames shown later
])
def test_a_video_counted_from_its_idr_pictures_is_split_among_decoders(checkpoint, tmp_path, codec, suffix,
                                                                      container, options, keyframes):
    """A camera's .h264/.hevc/.mjpeg dump has no timestamps (those a bare MPEG-2 or MPEG-4 stream's parser makes up
    shift past damaged data, and a seek by them may fail), and H.264 with B-frames in AVI has decode-order counters
    for them: one decoder counted all their frames (one core for an hours-long video). Their index now finds where
    each picture a decoder can start from (an IDR picture, an MPEG-2 I-picture first in its group, an I-VOP, any JPEG,
    an AV1 key frame shown) starts in the file; a segment's decoder reads from there (a bare stream: its parameter
    sets first) or seeks there (AVI: by its counter) and counts from its number. 1 and 3 decoders write the same CSV,
    times frame / rate, and the job plans several tasks."""
    from foldedcnn.data.video import index_video

    clip = write_square_clip(tmp_path / f"camera.{suffix}", 300, codec=codec, options=options, container=container)
    index = index_video(clip)
    assert index.seekable and list(index.keyframes[:3]) == keyframes and index.offsets is not None
    rows = _rows_of_one_and("3", checkpoint, clip, tmp_path)
    assert [int(r[0]) for r in rows] == list(range(300)) and [r[1] for r in rows] == [f"{i / 25:.6f}" for i in
                                                                                      range(300)]
    cfg = job.JobConfig(checkpoint, [clip], tmp_path / "plan", roi=ROI, uncertain=(0.2, 0.8), batch=8,
                        chunk_frames=16)
    output = job.JobVideo(0, clip, clip.stem, cfg, {"class_names": ["a", "b"], "sha256": "0" * 64}, ROI)
    assert len(plan.plan_tasks([output], cfg, (50, 50), 3, lambda info: ("cpu", None))) > 1


def test_a_damaged_bare_stream_is_labelled_past_the_damage_however_it_is_split(checkpoint, tmp_path):
    """A bare H.264 stream with damaged packets, split among decoders from its IDR pictures: 1 and 3 decoders write
    the same CSV."""
    clip = damage_packets(write_raw_stream_clip(tmp_path / "camera.h264", 300), [30, 31, 140, 220])
    rows = _rows_of_one_and("3", checkpoint, clip, tmp_path)
    assert len(rows) > 280


def test_a_damaged_bare_mpeg4_stream_keeps_every_frame_number(checkpoint, tmp_path):
    """Its parser made up timestamps that damaged data shifted (the frames after the damage were located one or two
    frames off, a row's time_s going back). Now counted from its I-VOPs: every frame has its row, the damaged ones
    undecodable, with 1 and 3 decoders."""
    clip = damage_packets(write_square_clip(tmp_path / "camera.m4v", 300, container="m4v", options={"g": "12"}),
                          [40, 41, 150])
    rows = _rows_of_one_and("3", checkpoint, clip, tmp_path)
    assert [int(r[0]) for r in rows] == list(range(300)) and [r[1] for r in rows] == [f"{i / 25:.6f}" for i in
                                                                                      range(300)]
    (video,) = json.loads((tmp_path / "3" / "summary.json").read_text())["videos"]
    assert video["undecodable"] == 3 and video["frames"] == 300


@pytest.mark.parametrize("codec,suffix,size,fps", [("mpeg4", "m4v", (96, 64), 25),
                                                   ("h263", "h263", (176, 144), 30000 / 1001)])
def test_a_bare_stream_without_pictures_known_to_start_from_is_counted_by_one_decoder(checkpoint, tmp_path, codec,
                                                                                      suffix, size, fps):
    """No I-VOP of an MPEG-4 Part 2 stream with B-frames is known to start a group a decoder can count from (its
    B-VOPs may refer to the group before), nor any picture of H.263 (not looked into), so one decoder counts their
    frames from the first, each frame's time its number over the rate (H.263's clock: 29.97 Hz). The .m4v failed
    whole before: the job sought by the timestamps its parser made up, and the seek to its first frame failed
    (EPERM); the H.263 stream, every frame of which its parser calls a keyframe, was split at frames its decoders
    could not decode from (rows without a label, other ones from 1 and 3 decoders)."""
    from foldedcnn.data.video import index_video

    clip = write_square_clip(tmp_path / f"camera.{suffix}", 300, width=size[0], height=size[1], codec=codec,
                             container=suffix, options={"g": "12", "bf": "2"} if codec == "mpeg4" else {"g": "12"})
    assert not index_video(clip).seekable
    rows = _rows_of_one_and("3", checkpoint, clip, tmp_path)
    assert [int(r[0]) for r in rows] == list(range(300)) and [r[1] for r in rows] == [f"{i / fps:.6f}" for i in
                                                                                      range(300)]
    assert all(r[5] for r in rows)  # every frame labelled


def test_class_names_with_commas_are_quoted(clips, tmp_path):
    import csv

    path = save_checkpoint(tmp_path / "c.safetensors", FoldedModel.from_zoo("noscope-coral", 2).eval(),
                           class_names=["empty", 'car, "big"'], extra={"roi": list(ROI)})
    assert _run([path, clips["short"], "--out", tmp_path / "out"]) == 0
    with open(tmp_path / "out" / "short.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][3] == 'p_car, "big"' and all(len(r) == 7 for r in rows)
    assert {r[5] for r in rows[1:]} <= {"empty", 'car, "big"'}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["videos"][0]["positives"] == sum(r[5] != "empty" for r in rows[1:])


def test_stride_keeps_every_nth_frame(clips, checkpoint, tmp_path):
    assert _run([checkpoint, clips["short"], "--out", tmp_path, "--stride", "5", "--batch", "4",
                 "--chunk-frames", "4"]) == 0
    _, rows = _rows(tmp_path / "short.csv")
    assert [int(r[0]) for r in rows] == list(range(0, 37, 5))


def test_folded_model_rows_do_not_depend_on_chunking(clips, checkpoint, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run([checkpoint, clips["short"], "--out", a, "--batch", "8", "--chunk-frames", "8"]) == 0
    assert _run([checkpoint, clips["short"], "--out", b, "--batch", "8", "--chunk-frames", "32"]) == 0
    assert (a / "short.csv").read_text() == (b / "short.csv").read_text()


def _cli(checkpoint, video, out, backend="torch", batch=8):
    return [sys.executable, "-m", "foldedcnn", "run", str(checkpoint), str(video), "--out", str(out),
            "--backend", backend, "--batch", str(batch), "--chunk-frames", str(2 * batch), "--workers", "3",
            "--no-progress"]


def test_last_batches_labelled_in_pieces_give_the_bytes_of_whole_batches(clips, checkpoint, tmp_path, monkeypatch):
    """With ONNX Runtime on the CPU (Engine.batch_independent) the job's last batches arrive and are labelled in
    quarter pieces (label.job.tail_piece); its CSVs are byte for byte those of a job labelling whole batches in
    one process."""
    pieces = []
    real = job.tail_piece
    monkeypatch.setattr(job, "tail_piece", lambda engine, batch: pieces.append(real(engine, batch)) or pieces[-1])
    args = [checkpoint, clips["long"], clips["short"], "--batch", "16", "--chunk-frames", "32", "--backend",
            "onnxruntime", "--no-progress"]
    assert main(["run", *map(str, args), "--out", str(tmp_path / "pieces"), "--workers", "3"]) == 0
    monkeypatch.setattr(job, "tail_piece", lambda engine, batch: 0)
    assert main(["run", *map(str, args), "--out", str(tmp_path / "whole"), "--workers", "1"]) == 0
    assert pieces == [4]
    for name in ("long.csv", "short.csv"):
        assert (tmp_path / "pieces" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def _rows_of_one_and(workers: str, checkpoint: Path, video: Path, tmp_path: Path, *options: str) -> list[list[str]]:
    """Label `video` with 1 decoder process and with `workers` (batch 8, chunks of 16, `options`, under tmp_path/1 and
    tmp_path/<workers>); both must write the same CSV: its rows."""
    args = [video, "--batch", "8", "--chunk-frames", "16", *options]
    for w in ("1", workers):
        assert _run([checkpoint, *args, "--out", tmp_path / w, "--workers", w]) == 0
    name = f"{video.stem}.csv"
    assert (tmp_path / workers / name).read_text() == (tmp_path / "1" / name).read_text()
    return _rows(tmp_path / workers / name)[1]


_X265_DEFAULT = {"g": "25", "preset": "ultrafast", "x265-params": "log-level=none"}  # open GOPs: CRA pictures


@pytest.mark.parametrize("codec,suffix,options", [
    ("libx265", "mp4", _X265_DEFAULT),
    ("libx265", "mkv", _X265_DEFAULT),
    ("libx265", "ts", _X265_DEFAULT),
    ("libx264", "mp4", {"g": "25", "bf": "2", "preset": "ultrafast", "x264-params": "open-gop=1"}),
    ("mpeg2video", "ts", {"g": "25", "bf": "2"}),  # MPEG-2's default: open GOPs, B-pictures before each I
])
def test_open_groups_of_pictures_split_among_decoders_give_the_csv_of_one(checkpoint, tmp_path, codec, suffix,
                                                                          options):
    """Encoders' defaults (x265) or options (x264, MPEG-2) whose groups of pictures are open: the pictures shown
    just before a keyframe are decoded after it, from references on both sides. A segment starting at that keyframe
    leaves them to the segment before, which decodes through it: split at every keyframe, 3 decoders write the CSV
    of one, every frame once."""
    from foldedcnn.data.video import index_video

    clip = write_square_clip(tmp_path / f"camera.{suffix}", 300, codec=codec, options=options)
    assert index_video(clip).seekable
    rows = _rows_of_one_and("3", checkpoint, clip, tmp_path)
    assert [int(r[0]) for r in rows] == list(range(300))
    cfg = job.JobConfig(checkpoint, [clip], tmp_path / "plan", roi=ROI, uncertain=(0.2, 0.8), batch=8,
                        chunk_frames=16)
    output = job.JobVideo(0, clip, clip.stem, cfg, {"class_names": ["a", "b"], "sha256": "0" * 64}, ROI)
    assert len(plan.plan_tasks([output], cfg, (50, 50), 3, lambda info: ("cpu", None))) > 1


def test_segments_of_an_mpeg_ts_recording_with_b_frames_give_the_csv_of_one_decoder(checkpoint, tmp_path):
    """Its seeks land after the keyframe asked for and are made again from further back (data._video_seek.sought): the
    frames before each segment's window are passed over, none lost or labelled twice."""
    ts = write_square_clip(tmp_path / "camera.ts", 300, codec="libx264", options={"g": "12", "bf": "2"})
    rows = _rows_of_one_and("3", checkpoint, ts, tmp_path)
    assert [int(r[0]) for r in rows] == list(range(300))


def test_a_capture_started_mid_group_of_pictures_is_split_and_labelled_from_its_first_keyframe(checkpoint, tmp_path):
    """A live TS capture joined mid-stream (its first frames reference pictures before the file): 3 decoders share it
    (its index starts at its first keyframe, so it can be sought) and write the 1 decoder's CSV, a row per frame of
    the index."""
    from foldedcnn.data.video import index_video

    whole = write_square_clip(tmp_path / "whole.ts", 300, codec="libx264", options={"g": "25", "bf": "2"}).read_bytes()
    capture = tmp_path / "capture.ts"
    capture.write_bytes(whole[len(whole) // 3 // 188 * 188:])
    frames = index_video(capture).frames
    rows = _rows_of_one_and("3", checkpoint, capture, tmp_path)
    assert [int(r[0]) for r in rows] == list(range(frames)) and 150 < frames < 250
    cfg = job.JobConfig(checkpoint, [capture], tmp_path / "plan", roi=ROI, uncertain=(0.2, 0.8), batch=8,
                        chunk_frames=16)
    output = job.JobVideo(0, capture, capture.stem, cfg, {"class_names": ["a", "b"], "sha256": "0" * 64}, ROI)
    tasks = plan.plan_tasks([output], cfg, (50, 50), 3, lambda info: ("cpu", None))
    assert len(tasks) > 1  # split into segments (one task took the whole capture before)


def test_the_last_segment_of_an_mpeg_ts_recording_with_b_frames_keeps_its_frames(checkpoint, tmp_path):
    """5 decoders cut a 131-frame TS recording so that its last segment starts in its last group of pictures
    (keyframe 120). A seek there lands at the stream's end, where no frame comes; it was taken for the end of the
    video: frames 120-130 were lost without an error (exit 0, 120 rows). The seek is made again from further back."""
    ts = write_square_clip(tmp_path / "camera.ts", 131, codec="libx264", options={"g": "12", "bf": "2"})
    rows = _rows_of_one_and("5", checkpoint, ts, tmp_path)
    assert [int(r[0]) for r in rows] == list(range(131))


def test_parallel_segments_give_the_same_csvs_as_one_decoder(clips, checkpoint, tmp_path):
    args = [clips["long"], clips["short"], "--batch", "8", "--chunk-frames", "16"]
    assert _run([checkpoint, *args, "--out", tmp_path / "one", "--workers", "1"]) == 0
    assert _run([checkpoint, *args, "--out", tmp_path / "many", "--workers", "3"]) == 0
    for name in ("long.csv", "short.csv"):
        assert (tmp_path / "many" / name).read_text() == (tmp_path / "one" / name).read_text()
    summary = json.loads((tmp_path / "many" / "summary.json").read_text())
    assert summary["workers"] == 3 and summary["decoder"] == "cpu" and summary["frames_per_s"] > 0
    t = summary["timing"]  # where the wall clock went, each part within it
    assert 0 < t["plan_s"] < t["first_batch_s"] < t["wall_s"] and 0 < t["model_s"] <= t["main_busy_s"] < t["wall_s"]
    # CPU time: the decoders' summed from their processes (none of it before the job's start), this process's own
    assert 0 < t["decoders_cpu_s"] < (os.cpu_count() or 1) * t["wall_s"] and 0 < t["main_cpu_s"]
    # the decoders' waits, for tasks and for slots: within the 3 processes' time of the job
    assert 0 < t["decoders_idle_s"] and 0 <= t["decoders_slot_wait_s"] and 0 < t["decoders_done_early_s"]
    assert t["decoders_idle_s"] + t["decoders_slot_wait_s"] + t["decoders_done_early_s"] < 3 * t["wall_s"]


def _decoder_pids(job_pid: int) -> list[int]:
    """The decoder processes of a running job: the children of its multiprocessing forkserver (from /proc)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    for child in (p for p, pp in parent.items() if pp == job_pid):
        try:
            if b"forkserver" in Path(f"/proc/{child}/cmdline").read_bytes():
                return [p for p, pp in parent.items() if pp == child]
        except OSError:
            continue
    return []


def _chunks(parts: Path) -> int:
    return len(list(parts.glob("[0-9]*.csv"))) if parts.exists() else 0


@pytest.mark.parametrize("workers", ["1", "3"])
def test_several_regions_decode_once_and_equal_a_job_per_region(clips, checkpoint, tmp_path, workers, capsys):
    """--roi twice: each frame is decoded once, and each region's CSV equals, byte for byte, that of a job of that
    region alone (one engine call per region: a folded model folds the same frames together)."""
    args = ["--batch", "8", "--chunk-frames", "16", "--stride", "2", "--workers", workers]
    videos = [clips["long"], clips["short"]]
    for name, roi in (("one", ROI), ("two", ROI2)):
        assert _run([checkpoint, *videos, "--out", tmp_path / name, "--roi", *map(str, roi), *args]) == 0
    capsys.readouterr()
    both = tmp_path / "both"
    assert _run([checkpoint, *videos, "--out", both, "--roi", *map(str, ROI), "--roi", *map(str, ROI2), *args]) == 0
    assert "short.mp4 region 2 (24, 10, 40, 40): 19 frames" in capsys.readouterr().out
    for video in ("long", "short"):
        assert (both / f"{video}.region1.csv").read_text() == (tmp_path / "one" / f"{video}.csv").read_text()
        assert (both / f"{video}.region2.csv").read_text() == (tmp_path / "two" / f"{video}.csv").read_text()
    summary = json.loads((both / "summary.json").read_text())
    assert summary["regions"] == [list(ROI), list(ROI2)] and summary["roi"] == list(ROI)
    assert [(Path(v["video"]).stem, v["region"], v["roi"]) for v in summary["videos"]] == [
        ("long", 1, list(ROI)), ("long", 2, list(ROI2)), ("short", 1, list(ROI)), ("short", 2, list(ROI2))]
    wall = summary["timing"]["wall_s"]
    assert summary["frames_per_s"] == pytest.approx((150 + 19) / wall, rel=0.01)  # frames, not frames x regions


def test_a_region_outside_fails_alone_and_a_region_given_twice_is_refused(clips, checkpoint, tmp_path, capsys):
    outside = ("80", "40", "50", "50")
    assert _run([checkpoint, clips["short"], "--out", tmp_path / "a", "--roi", *map(str, ROI), "--roi", *outside]) == 1
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    first, second = summary["videos"]
    assert first["error"] is None and first["frames"] == 37 and "outside" in second["error"]
    assert _run([checkpoint, clips["short"], "--out", tmp_path / "b", "--roi", *map(str, ROI),
                 "--roi", *map(str, ROI)]) == 2
    assert "a region is given twice" in capsys.readouterr().err


def test_a_folder_of_videos_is_labelled_video_by_video(clips, checkpoint, tmp_path, capsys):
    folder = tmp_path / "cams"
    (folder / "north").mkdir(parents=True)
    (folder / "north" / "short.mp4").write_bytes(clips["short"].read_bytes())
    (folder / "notes.txt").write_text("not a video")
    assert _run([checkpoint, folder, clips["short"], "--out", tmp_path / "out", "--roi", *map(str, ROI)]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [v["frames"] for v in summary["videos"]] == [37, 37]
    assert len({v["csv"] for v in summary["videos"]}) == 2  # two short.mp4: two CSVs
    assert _run([checkpoint, folder, folder / "north" / "short.mp4", "--out", tmp_path / "b"]) == 2
    assert "is given twice" in capsys.readouterr().err


def test_many_outputs_print_one_ok_line_and_every_failure(clips, checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("foldedcnn.cli.run.OK_LINES", 2)  # thousands of clips in practice
    young = write_square_clip(tmp_path / "young.mp4", 12)  # left out by --min-age: counted, not listed
    for old in (clips["short"], clips["long"]):
        os.utime(old, (time.time() - 3600,) * 2)
    argv = [checkpoint, clips["short"], clips["long"], tmp_path / "missing.mp4", young, "--out", tmp_path / "out",
            "--roi", *map(str, ROI), "--min-age", "600"]
    assert _run(argv) == 1
    out = capsys.readouterr().out
    assert "FAILED  " in out and "missing.mp4" in out and not any(line.startswith(("ok      /", "skipped"))
                                                                      for line in out.splitlines())
    assert "ok      2 of 4 outputs: 337 frames" in out and "; 1 skipped (--min-age)" in out and "summary.json" in out


def test_a_grey_model_is_refused_before_any_decoding(clips, tmp_path, capsys):
    from foldedcnn.transform import ModelRef

    (tmp_path / "greynet.py").write_text("from torch import nn\n\ndef grey():\n    return nn.Sequential("
                                         "nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), "
                                         "nn.Linear(4, 2))\n")
    folded = ModelRef(f"{tmp_path / 'greynet.py'}:grey", (1, 48, 64)).build(2)
    path = save_checkpoint(tmp_path / "grey.safetensors", folded)  # its default normalization has 1 channel too
    assert _run([path, clips["short"], "--out", tmp_path / "out", "--roi", *map(str, ROI), "--trust-code"]) == 2
    err = capsys.readouterr().err
    assert "takes 1-channel images" in err and "train it on 3-channel images" in err
    assert not (tmp_path / "out").exists()


def test_several_regions_killed_midway_resume_to_the_same_csvs(clips, checkpoint, tmp_path):
    """Each region has its own chunks: a kill can leave them at different points; the rerun decodes the chunks any
    region misses and each CSV equals an uninterrupted run's."""
    two = ["--roi", *map(str, ROI), "--roi", *map(str, ROI2)]
    ref = tmp_path / "ref"
    assert _run([checkpoint, clips["long"], "--out", ref, "--batch", "8", "--chunk-frames", "16", *two]) == 0
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([*_cli(checkpoint, clips["long"], out), *two], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _chunks(out / ".parts" / "long.region2") < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for gap in ("00000001.csv", "00000003.csv"):  # as if killed between the regions' writes
        (out / ".parts" / "long.region1" / gap).unlink(missing_ok=True)
    final = subprocess.run([*_cli(checkpoint, clips["long"], out), *two], env=env, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    for k in (1, 2):
        assert (out / f"long.region{k}.csv").read_text() == (ref / f"long.region{k}.csv").read_text()


@pytest.mark.parametrize("backend,batch", [("torch", 8), ("onnxruntime", 16)])  # onnxruntime: last batches in pieces
def test_sigkill_at_random_points_then_resume_equals_uninterrupted(clips, checkpoint, tmp_path, backend, batch):
    """The job with 3 decoder processes, killed (SIGKILL) at random points, then rerun: the CSV equals an
    uninterrupted run's byte for byte (chunks are stored out of order; a rerun redoes the missing ones)."""
    ref = tmp_path / "ref"
    assert main(["run", *map(str, [checkpoint, clips["long"], "--out", ref, "--batch", batch, "--chunk-frames",
                                   2 * batch]), "--backend", backend, "--workers", "1", "--no-progress"]) == 0
    out = tmp_path / "killed"
    parts = out / ".parts" / "long"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = random.Random(1234)
    kills = 0
    for _ in range(4):
        target = _chunks(parts) + rng.randint(1, 6)  # kill once this many chunks exist, plus a random delay
        proc = subprocess.Popen(_cli(checkpoint, clips["long"], out, backend, batch), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if _chunks(parts) >= target:
                time.sleep(rng.uniform(0, 0.05))
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.002)
        proc.wait()
        if (out / "long.csv").exists():
            break
    assert kills >= 1
    final = subprocess.run(_cli(checkpoint, clips["long"], out, backend, batch), env=env, capture_output=True,
                           text=True)
    assert final.returncode == 0, final.stderr
    assert (out / "long.csv").read_text() == (ref / "long.csv").read_text()
    _, rows = _rows(out / "long.csv")
    assert [int(r[0]) for r in rows] == list(range(300))


def _older_rules(index: Path) -> None:
    """Rewrite the saved index at `index` as an older foldedcnn saved it: the same arrays, no `rules` entry."""
    with np.load(index) as z:
        arrays = {name: z[name] for name in z.files if name != "rules"}
    with open(index, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("kept", ["intact", "damaged", "older rules"])
def test_a_rerun_resumes_with_the_index_a_killed_run_kept(clips, checkpoint, tmp_path, monkeypatch, kept):
    """A long video's keyframe index is kept beside its chunks, so the rerun of a killed job demuxes nothing; a
    kept index that cannot be read, or that an older foldedcnn made by other rules (INDEX_RULES: for a bare .m4v, say,
    timestamps its parser made up where the frames are now counted), is made again. The CSV equals an uninterrupted
    run's either way."""
    args = ["--batch", "8", "--chunk-frames", "16", "--workers", "2"]
    ref = tmp_path / "ref"
    assert _run([checkpoint, clips["long"], "--out", ref, *args]) == 0
    assert not (ref / ".parts" / "long" / "index.npz").exists()  # 300 frames: too short to keep its index
    monkeypatch.setattr(plan, "INDEX_KEPT_FROM", 300)
    labelled = job._label_batch

    def killed_after_five_batches(*a, calls=[]):  # noqa: B006 - counts the calls of this run
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return labelled(*a)

    out = tmp_path / "out"
    monkeypatch.setattr(job, "_label_batch", killed_after_five_batches)
    assert _run([checkpoint, clips["long"], "--out", out, *args]) == 130  # as Ctrl-C: "interrupted", exit 130
    index = out / ".parts" / "long" / "index.npz"
    assert index.exists() and _chunks(out / ".parts" / "long") >= 1 and not (out / "long.csv").exists()
    monkeypatch.setattr(job, "_label_batch", labelled)
    if kept == "intact":
        monkeypatch.setattr(plan, "keyframe_index", lambda path: pytest.fail(f"{path} was indexed again"))
    elif kept == "damaged":
        index.write_bytes(b"PK\x03\x04 not an index")
    else:
        _older_rules(index)
        with pytest.raises(VideoError, match="made by other rules"):
            VideoIndex.load(index)
    assert _run([checkpoint, clips["long"], "--out", out, *args]) == 0
    assert (out / "long.csv").read_text() == (ref / "long.csv").read_text()
    assert VideoIndex.load(index).frames == 300


def test_the_report_and_the_frames_export_seek_with_the_index_the_run_kept(clips, checkpoint, tmp_path, monkeypatch):
    """A long video's kept index (above) also spares `foldedcnn report` and `foldedcnn frames` a demux pass of it
    (seconds for a day-long recording), while the file is still the one labelled; a new recording at that path is
    indexed afresh."""
    import foldedcnn.data.video as video
    from foldedcnn.label.frames_export import export_frames
    from foldedcnn.label.report import write_report

    clip = Path(shutil.copy(clips["long"], tmp_path / "camera.mp4"))
    monkeypatch.setattr(plan, "INDEX_KEPT_FROM", 300)
    out = tmp_path / "out"
    assert _run([checkpoint, clip, "--out", out, "--batch", "8", "--chunk-frames", "16", "--workers", "2"]) == 0
    assert (out / ".parts" / "camera" / "index.npz").exists()
    demuxed = []
    real = video.index_video
    monkeypatch.setattr(video, "index_video", lambda path: demuxed.append(path) or real(path))
    assert write_report(out).images > 0
    assert export_frames(out, tmp_path / "frames", which="all").images == 300
    assert demuxed == []
    kept = out / ".parts" / "camera" / "index.npz"
    intact = kept.read_bytes()
    kept.write_bytes(b"PK\x03\x04 not an index")  # damaged: the video is demuxed instead
    assert write_report(out).images > 0 and demuxed == [clip]
    kept.write_bytes(intact)
    _older_rules(kept)  # made by an older foldedcnn: demuxed too
    assert write_report(out).images > 0 and demuxed == [clip, clip]
    kept.write_bytes(intact)
    write_square_clip(clip, 300, width=112)  # another recording at the same path: the kept index is not its
    monkeypatch.setattr(VideoIndex, "load", lambda path: pytest.fail(f"{path} read for another recording"))
    assert write_report(out).images > 0 and demuxed == [clip, clip, clip]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT's default action in the job, as a terminal's foreground job has it: a test run in the background
    of a non-interactive shell (`make test &`) inherits SIGINT ignored, and Python keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_is_one_line_and_the_rerun_resumes(checkpoint, tmp_path):
    """Ctrl-C in a terminal reaches the job and its decoder processes alike (one process group): one line, exit
    130, no decoder left behind and no traceback from each of them; the same command then finishes the CSV."""
    clip = write_square_clip(tmp_path / "clip.mp4", 1000)  # long enough that Ctrl-C lands mid-job on any machine
    ref = tmp_path / "ref"
    assert _run([checkpoint, clip, "--out", ref, "--batch", "8", "--chunk-frames", "16"]) == 0
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [*_cli(checkpoint, clip, out), "--workers", "1"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_ctrl_c_as_in_a_terminal)
    deadline = time.monotonic() + 60
    while _chunks(out / ".parts" / "clip") < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "foldedcnn run: interrupted (the same command resumes it)\n"
    deadline = time.monotonic() + 10  # the decoders and the fork server exit with the job
    while time.monotonic() < deadline and _group_alive(proc.pid):
        time.sleep(0.05)
    assert not _group_alive(proc.pid)
    final = subprocess.run(command, env=env, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert (out / "clip.csv").read_text() == (ref / "clip.csv").read_text()


def test_a_killed_decoder_process_takes_no_rows_with_it(clips, checkpoint, tmp_path):
    ref = tmp_path / "ref"
    assert _run([checkpoint, clips["long"], "--out", ref, "--batch", "8", "--chunk-frames", "16"]) == 0
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(_cli(checkpoint, clips["long"], out), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and killed is None:
        if _chunks(out / ".parts" / "long") >= 1 and (decoders := _decoder_pids(proc.pid)):
            killed = decoders[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.002)
    _, err = proc.communicate(timeout=60)
    assert killed is not None and proc.returncode == 0, err
    assert (out / "long.csv").read_text() == (ref / "long.csv").read_text()
    assert json.loads((out / "summary.json").read_text())["worker_restarts"] >= 1


def test_rerun_with_other_settings_is_refused(clips, checkpoint, tmp_path):
    parts = tmp_path / ".parts" / "long"
    parts.mkdir(parents=True)
    (parts / "config.json").write_text(json.dumps({"stride": 99}))
    assert _run([checkpoint, clips["long"], "--out", tmp_path]) == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "other settings" in summary["videos"][0]["error"]


@pytest.mark.parametrize("workers", [1, 3])
def test_bad_videos_are_recorded_and_the_others_complete(clips, checkpoint, tmp_path, workers):
    bad = tmp_path / "bad"
    bad.mkdir()
    text = bad / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    truncated = bad / "truncated.mp4"
    data = clips["long"].read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    empty = write_empty_clip(bad / "empty.mp4")
    missing = bad / "missing.mp4"
    out = tmp_path / "out"
    code = _run([checkpoint, missing, text, empty, clips["short"], truncated, "--out", out, "--workers", workers])
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    by_name = {Path(v["video"]).name: v for v in summary["videos"]}
    assert by_name["short.mp4"]["error"] is None and by_name["short.mp4"]["frames"] == 37
    assert "not found" in by_name["missing.mp4"]["error"]
    assert by_name["notes.mp4"]["error"]
    assert by_name["empty.mp4"]["error"]
    # a truncated file either fails clearly or yields only the frames it holds
    t = by_name["truncated.mp4"]
    assert t["error"] or 0 < t["frames"] < 300
    assert summary["failed"] >= 3


def test_an_mp4_cut_short_behind_its_index_gives_the_frames_it_holds_however_it_is_split(checkpoint, tmp_path):
    """An MP4 with its index first (faststart, as streamed recordings are) lists frames its cut-off data no longer
    holds; planning takes that list (data._video_probe.listed_index), so segments past the cut find no frame. They end
    the video there: 3 decoders give the 1 decoder's CSV and the same "truncated" record."""
    from foldedcnn.data.video import index_video

    cut = write_square_clip(tmp_path / "cut.mp4", 300, container_options={"movflags": "faststart"})
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    assert index_video(cut).frames == 300  # the index still lists every frame written
    results = {}
    for workers in ("1", "3"):
        assert _run([checkpoint, cut, "--out", tmp_path / workers, "--batch", "8", "--chunk-frames", "16",
                     "--workers", workers]) == 1
        (results[workers],) = json.loads((tmp_path / workers / "summary.json").read_text())["videos"]
    assert results["1"]["truncated"] and 0 < results["1"]["frames"] < 300 and results["1"]["expected_frames"] == 300
    assert results["3"] == {**results["1"], "csv": results["3"]["csv"], "decode_fps": results["3"]["decode_fps"],
                            "model_fps": results["3"]["model_fps"], "end_to_end_fps": results["3"]["end_to_end_fps"]}
    assert (tmp_path / "3" / "cut.csv").read_text() == (tmp_path / "1" / "cut.csv").read_text()


@pytest.mark.parametrize("codec,suffix,options", [
    ("mpeg4", "mp4", {"g": "12"}),
    ("libx264", "mkv", {"g": "12", "bf": "2", "preset": "ultrafast"}),  # B-frames: a damaged keyframe's group
    ("mpeg4", "avi", {"g": "12"}),
])
def test_a_recording_with_damaged_packets_is_labelled_past_them_however_it_is_split(checkpoint, tmp_path, codec,
                                                                                    suffix, options, capsys):
    """A camera's recording with a few bad bytes (a keyframe among them): the frames the damage leaves out get rows
    with their frame and time and no label, every other frame its label; 1 decoder and 3 (whose segments seek into
    and past the damage) write the same CSV, and summary.json counts them. The video is not a failure (it was:
    the first packet that failed to decode ended it)."""
    from foldedcnn.data.video import index_video, iter_frames

    clip = damage_packets(write_square_clip(tmp_path / f"camera.{suffix}", 300, codec=codec, options=options),
                          [30, 48, 150, 151, 200])
    missing = [f.index for f in iter_frames(clip, index=index_video(clip), threads=1, undecodable=True)
               if f.rgb is None]  # frames the decoder gives none for, read in one pass as one of the job's decoders
    assert missing and set(missing) <= set(range(300))
    rows = _rows_of_one_and("3", checkpoint, clip, tmp_path)
    assert [int(r[0]) for r in rows] == list(range(300))
    assert [int(r[0]) for r in rows if r[5] == ""] == missing
    assert all(r[2:] == [""] * 5 and float(r[1]) > 0 for r in rows if r[5] == "")  # its time, nothing else
    assert all(r[5] in ("absent", "present") and r[6] in ("0", "1") for r in rows if r[5] != "")
    (video,) = json.loads((tmp_path / "3" / "summary.json").read_text())["videos"]
    assert video["error"] is None and video["frames"] == 300 and video["undecodable"] == len(missing)
    assert video["positives"] == sum(r[5] == "present" for r in rows)  # uncertain ones too (their provisional label)
    assert f"{len(missing)} undecodable (damaged data" in capsys.readouterr().out
    # the report counts them and shows none; the frames export writes every frame but them
    from foldedcnn.label.frames_export import export_frames
    from foldedcnn.label.report import write_report

    assert write_report(tmp_path / "3").images > 0
    page = (tmp_path / "3" / "report.html").read_text()
    assert f"<span>undecodable (damaged data)</span><b>{len(missing)} (" in page
    assert f"<td>ok, {len(missing)} undecodable (damaged data)</td>" in page  # the overview's status
    exported = export_frames(tmp_path / "3", tmp_path / "frames", which="all")
    assert exported.images == 300 - len(missing) and not exported.failed


def test_a_damaged_recording_whose_frames_are_counted_is_labelled_past_the_damage(checkpoint, tmp_path):
    """H.264 with B-frames in AVI (its frames counted, one decoder takes it) with 3 damaged packets: the job failed
    it at the first (no CSV); now every frame has a row, the 3 that did not decode without a label, and the times
    are the frames' own (they were decode-order counters: out of order)."""
    clip = damage_packets(write_square_clip(tmp_path / "camera.avi", 300, codec="libx264",
                                            options={"g": "12", "bf": "2", "preset": "ultrafast"}), [40, 41, 150])
    rows = _rows_of_one_and("3", checkpoint, clip, tmp_path)
    assert [int(r[0]) for r in rows] == list(range(300))
    assert [float(r[1]) for r in rows] == pytest.approx([k / 25 for k in range(300)], abs=1e-6)
    (video,) = json.loads((tmp_path / "3" / "summary.json").read_text())["videos"]
    assert video["error"] is None and video["undecodable"] == 3 and video["missing_frames"] == 0


@pytest.mark.parametrize("damaged,rows", [
    (lambda clip: damage_avi_index(clip, 150, 10), 300),  # its index lost 10 entries: 3 decoders gave 290 rows
    (lambda clip: damage_avi_chunk_headers(clip, [100, 101, 180]), 297),  # 3 chunks lost: truncated
])
def test_an_avi_whose_index_or_chunks_are_damaged_gives_the_same_rows_however_many_decoders(checkpoint, tmp_path,
                                                                                          damaged, rows):
    """AVI's timestamps are counters of the chunks read, and it seeks by its index (idx1): where the index lost
    entries, or the demuxer passes over chunks whose headers are damaged, a seek lands on other frames than the
    counters of a demux pass say. With 10 index entries zeroed, 1 decoder labelled 300 frames and 3 decoders 290
    (failed); its frames are now counted by one decoder: the same CSV, truncated only where chunks are gone (297 of
    the 300 frames it declares)."""
    clip = damaged(write_square_clip(tmp_path / "camera.avi", 300, width=320, height=240, options={"g": "12"}))
    for w in ("1", "3"):
        assert _run([checkpoint, clip, "--out", tmp_path / w, "--batch", "8", "--chunk-frames", "16", "--workers",
                     w]) == int(rows < 300)
    assert (tmp_path / "1" / "camera.csv").read_text() == (tmp_path / "3" / "camera.csv").read_text()
    (video,) = json.loads((tmp_path / "3" / "summary.json").read_text())["videos"]
    assert (video["frames"], video["expected_frames"], video["truncated"]) == (rows, 300, rows < 300)


def test_a_clip_cut_by_its_edit_list_is_labelled_from_its_first_frame_shown(checkpoint, tmp_path):
    """A clip cut with `ffmpeg -ss ... -c copy` (its edit list hides the 2 frames before the cut): 58 rows, the same
    from 1 and 3 decoders, and not "truncated" (its container lists 60 samples; it was)."""
    clip = trim_start(write_square_clip(tmp_path / "cut.mp4", 60, codec="libx264",
                                        options={"g": "12", "bf": "2", "preset": "ultrafast"}), 2)
    rows = _rows_of_one_and("3", checkpoint, clip, tmp_path)
    assert [int(r[0]) for r in rows] == list(range(58)) and float(rows[0][1]) == 0.0
    (video,) = json.loads((tmp_path / "3" / "summary.json").read_text())["videos"]
    assert video["frames"] == video["expected_frames"] == 58 and not video["truncated"] and video["undecodable"] == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_video_that_switches_resolution_is_one_clear_error(clips, checkpoint, tmp_path, workers):
    """Concatenated stream segments can change size midway; the region then means other pixels (or lies outside
    the frame: a decoder process crashed three times on it, reported as "died at output row 0")."""
    from foldedcnn.data.video import VideoError, iter_frames

    switch = write_size_switch_clip(tmp_path / "switch.ts", 30)
    seen = []
    with pytest.raises(VideoError, match=r"frame size changes from 96x64 to 48x32 at frame (\d+)") as error:
        seen.extend(f.index for f in iter_frames(switch, roi=ROI))
    at = int(re.search(r"at frame (\d+)", str(error.value)).group(1))
    assert seen == list(range(at)) and at >= 25  # the frames before the switch come first (of 30 written)
    assert _run([checkpoint, switch, clips["short"], "--out", tmp_path / "out", "--workers", workers]) == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    by_name = {Path(v["video"]).name: v for v in summary["videos"]}
    assert "frame size changes from 96x64 to 48x32" in by_name["switch.ts"]["error"]
    assert by_name["short.mp4"]["error"] is None and by_name["short.mp4"]["frames"] == 37
    assert summary["worker_restarts"] == 0


def test_a_video_of_another_size_than_the_training_one_gets_a_note(clips, tmp_path, capsys):
    """The checkpoint's region was drawn on the training video's frames; on a video of another size it still fits
    but may show something else: a note says so, unless --roi was given."""
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "c.safetensors", FoldedModel.from_zoo("noscope-coral", 2).eval(),
                           class_names=["absent", "present"],
                           extra={"data_source": {"roi": list(ROI), "frame_size": [128, 96]}})
    assert _run([ckpt, clips["short"], "--out", tmp_path / "a"]) == 0
    (video,) = json.loads((tmp_path / "a" / "summary.json").read_text())["videos"]
    assert "whose training video was 128x96; this one is 96x64: pass --roi" in video["note"]
    assert "note    " in capsys.readouterr().out
    assert _run([ckpt, clips["short"], "--out", tmp_path / "b", "--roi", *map(str, ROI)]) == 0
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["videos"][0]["note"] is None


def test_a_portrait_video_is_labelled_in_the_frame_as_shown(checkpoint, tmp_path):
    """A phone's portrait video: 96x64 stored, shown 64x96 (turned 90° clockwise by its display matrix). A region of
    the frame as shown is labelled (it was outside the stored frame), split among decoders the same; one that fits
    the stored frame only fails alone, naming the frame as shown, from its decoders."""
    clip = write_turned_clip(tmp_path / "portrait.mp4", 300, 270, options={"g": "25"})
    shown_only = ("8", "40", "48", "48")  # y + h = 88: below the stored frame's 64 rows
    rows = _rows_of_one_and("3", checkpoint, clip, tmp_path, "--roi", *shown_only)
    assert [int(r[0]) for r in rows] == list(range(300))
    out = tmp_path / "stored"
    assert _run([checkpoint, clip, "--out", out, "--roi", *shown_only, "--roi", "40", "8", "48", "48"]) == 1
    shown, stored = json.loads((out / "summary.json").read_text())["videos"]
    assert shown["error"] is None and shown["frames"] == 300
    assert "outside the 64x96 frame shown rotated 90° clockwise (stored 96x64)" in stored["error"]


def test_region_outside_the_frame_is_an_error(clips, checkpoint, tmp_path, capsys):
    assert _run([checkpoint, clips["short"], "--out", tmp_path, "--roi", "80", "40", "50", "50"]) == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "outside" in summary["videos"][0]["error"]
    assert capsys.readouterr().out.splitlines()[-1].endswith("no frame labelled)")  # not "None frames/s"


def _same_rows(csv_a: Path, csv_b: Path) -> None:
    """Same frames in the same order, same labels, probabilities within 2e-6 (two processes' float32 sums); the same
    frames that did not decode (empty fields)."""
    head_a, rows_a = _rows(csv_a)
    head_b, rows_b = _rows(csv_b)
    assert head_a == head_b and len(rows_a) == len(rows_b)
    for ra, rb in zip(rows_a, rows_b, strict=True):
        assert ra[0] == rb[0] and ra[5:] == rb[5:]
        assert all(x == y if "" in (x, y) else abs(float(x) - float(y)) <= 2e-6
                   for x, y in zip(ra[1:5], rb[1:5], strict=True))


def test_an_mpeg_ts_recording_whose_timestamps_wrap_around_is_split_and_timed_in_order(checkpoint, tmp_path):
    """MPEG-TS timestamps are 33 bits of a 90 kHz clock: they wrap around to 0 every 26.5 hours of a live stream's
    clock, which a recording may start anywhere in. FFmpeg's demuxer unwraps them (here: the frames before the wrap
    get negative times); 3 decoders, seeking on both sides of the wrap, write the 1 decoder's CSV, a row per frame,
    its times a frame apart throughout, no frame counted missing."""
    ts = wrap_ts_timestamps(write_square_clip(tmp_path / "camera.ts", 300, codec="libx264",
                                              options={"g": "25", "bf": "2", "preset": "ultrafast"}), 5.0)
    with av.open(str(ts), options={"correct_ts_overflow": "0"}) as container:  # as the file holds them: they wrap
        stamps = [p.pts for p in container.demux(video=0) if p.pts is not None]
    assert stamps[0] > 2**33 - 6 * 90000 and stamps[-1] < 8 * 90000
    rows = _rows_of_one_and("3", checkpoint, ts, tmp_path)
    assert [int(r[0]) for r in rows] == list(range(300))
    times = np.array([float(r[1]) for r in rows])
    np.testing.assert_allclose(np.diff(times), 0.04, atol=2e-6)  # CSV times: 6 decimals
    assert times[0] < 0 < times[-1]
    (video,) = json.loads((tmp_path / "3" / "summary.json").read_text())["videos"]
    assert video["error"] is None and video["missing_frames"] == 0 and video["gaps_s"] == []


def test_frames_a_network_stream_lost_are_counted_from_the_timestamps_it_jumps(checkpoint, tmp_path, capsys):
    """An MPEG-TS recording that lost a sixth of its packets midway: its demuxer passes over the hole without an
    error and the frames after it come on, so the CSV has a row for each frame the file holds and summary.json
    counts the frames whose time the rows' times jump over (they were not counted anywhere), with where. 1 and 3
    decoders write the same CSV; a rerun of the finished job says the same of it."""
    ts = drop_ts_packets(write_square_clip(tmp_path / "camera.ts", 300, codec="libx264",
                                           options={"g": "25", "bf": "2", "preset": "ultrafast"}), 0.5, 1 / 6)
    rows = _rows_of_one_and("3", checkpoint, ts, tmp_path)
    (video,) = json.loads((tmp_path / "3" / "summary.json").read_text())["videos"]
    assert video["error"] is None and video["frames"] == len(rows) < 260
    assert video["frames"] + video["missing_frames"] == 300  # every frame of the recording: a row, or counted missing
    before, after = max(video["gaps_s"], key=lambda gap: gap[1] - gap[0])
    assert after - before > 1.5 and [float(r[1]) for r in rows].index(before) + 1 == [float(r[1]) for r in rows].index(
        after)  # the rows either side of the hole
    assert f"{video['missing_frames']} frames missing from the file" in capsys.readouterr().out
    from foldedcnn.label.report import write_report

    write_report(tmp_path / "3")
    page = (tmp_path / "3" / "report.html").read_text()
    assert f"<span>missing from the file (timestamps jump)</span><b>{video['missing_frames']}</b>" in page
    assert f"{video['missing_frames']} missing from the file (its timestamps jump over them)</td>" in page
    assert _run([checkpoint, ts, "--out", tmp_path / "3", "--batch", "8", "--chunk-frames", "16"]) == 0
    assert json.loads((tmp_path / "3" / "summary.json").read_text())["videos"][0] == {
        **video, "decoder": None, "decode_fps": None, "model_fps": None, "end_to_end_fps": None}  # nothing decoded


def test_an_mkv_whose_frames_stop_before_the_length_it_declares_is_truncated(checkpoint, tmp_path):
    """A Matroska recording declares its video's length (its DURATION tag, written when the file is closed, near its
    start); cut short afterwards (a copy that stopped halfway, a damaged part its demuxer cannot pass), its frames
    stop early with no error from the demuxer: the job called it ok. Now it is truncated (exit 1) with the rows that
    decoded; the whole file is not (its last frame ends at the length declared)."""
    whole = write_square_clip(tmp_path / "whole.mkv", 300, codec="libx264",
                              options={"g": "25", "bf": "2", "preset": "ultrafast"})
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    assert _run([checkpoint, whole, "--out", tmp_path / "whole"]) == 0
    (video,) = json.loads((tmp_path / "whole" / "summary.json").read_text())["videos"]
    assert video["expected_seconds"] == 12.0 and not video["truncated"] and video["missing_frames"] == 0
    assert _run([checkpoint, cut, "--out", tmp_path / "cut"]) == 1
    (video,) = json.loads((tmp_path / "cut" / "summary.json").read_text())["videos"]
    rows = _rows(tmp_path / "cut" / "cut.csv")[1]
    assert video["truncated"] and video["frames"] == len(rows) and 100 < len(rows) < 200
    assert video["error"].startswith(f"truncated: its frames stop at {float(rows[-1][1]):.2f} s of the 12.00 s")


@pytest.mark.slow
def test_ray_run_matches_local_run_and_resumes_a_killed_one(clips, checkpoint, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    from foldedcnn.errors import FoldedCNNError
    from foldedcnn.label._chunk_store import ChunkStore

    local, on_ray, resumed = tmp_path / "local", tmp_path / "ray", tmp_path / "resumed"
    args = ["--batch", "8", "--chunk-frames", "16"]
    damaged = damage_packets(write_square_clip(tmp_path / "camera.avi", 60, options={"g": "12"}), [20, 24])
    lossy = drop_ts_packets(write_square_clip(tmp_path / "stream.ts", 120, options={"g": "12"}), 0.5, 1 / 6)
    assert _run([checkpoint, clips["short"], clips["long"], damaged, lossy, "--out", local, *args]) == 0
    def killed(self, chunks, held=None, seen=None):
        raise FoldedCNNError("killed before publishing")

    with monkeypatch.context() as m:  # a local run that stops before publishing: all chunks stored
        m.setattr(ChunkStore, "finish", killed)
        assert _run([checkpoint, clips["long"], "--out", resumed, "--workers", "3", *args]) == 1
    parts = resumed / ".parts" / "long"
    for gap in ("00000001.csv", "00000005.csv", "00000018.csv"):  # as if killed with these chunks missing
        (parts / gap).unlink()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert _run([checkpoint, clips["short"], clips["long"], damaged, lossy, "--out", on_ray, "--ray", "--actors",
                     "1", *args]) == 0
        assert _run([checkpoint, clips["long"], "--out", resumed, "--ray", "--actors", "1", *args]) == 0
        two = ["--roi", *map(str, ROI), "--roi", *map(str, ROI2)]
        os.utime(clips["short"], (time.time() - 3600,) * 2)
        young = tmp_path / "young.mp4"  # a recording still being written: left out (--min-age) on Ray too
        young.write_bytes(clips["long"].read_bytes()[:5000])
        assert _run([checkpoint, clips["short"], young, "--out", tmp_path / "ray2", "--ray", "--actors", "1", *two,
                     "--min-age", "60", *args]) == 0
    finally:
        ray.shutdown()
    for name in ("short.csv", "long.csv", "camera.csv", "stream.csv"):  # camera: frames 20 and 24 do not decode
        _same_rows(local / name, on_ray / name)
    ray_videos = json.loads((on_ray / "summary.json").read_text())["videos"]
    assert [v["undecodable"] for v in ray_videos][:3] == [0, 0, 2]
    local_videos = json.loads((local / "summary.json").read_text())["videos"]  # stream: a stretch lost, counted alike
    assert [v["missing_frames"] for v in ray_videos] == [v["missing_frames"] for v in local_videos]
    assert ray_videos[3]["missing_frames"] > 10 and ray_videos[3]["frames"] + ray_videos[3]["missing_frames"] == 120
    _same_rows(local / "long.csv", resumed / "long.csv")
    assert _run([checkpoint, clips["short"], "--out", tmp_path / "local2", "--roi", *map(str, ROI2), *args]) == 0
    _same_rows(local / "short.csv", tmp_path / "ray2" / "short.region1.csv")  # several regions on Ray too
    _same_rows(tmp_path / "local2" / "short.csv", tmp_path / "ray2" / "short.region2.csv")
    left_out = json.loads((tmp_path / "ray2" / "summary.json").read_text())["videos"][2:]
    assert [v["region"] for v in left_out] == [1, 2] and all(v["skipped"].startswith("modified ") for v in left_out)
    assert not list((tmp_path / "ray2").glob("young*"))
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["videos"][0]["resumed_at_frame"] == 16 * 16 and not list(parts.glob("0*.csv"))
    # honest speeds: each video's frames/s counts from the job's start (its rows reach the driver in bursts); the
    # backend named is the one the actors ran (with "auto", what it chose there)
    summary = json.loads((on_ray / "summary.json").read_text())
    wall = sum(v["frames"] for v in summary["videos"]) / summary["frames_per_s"]
    implied = [v["frames"] / v["end_to_end_fps"] for v in summary["videos"]]
    # frames/s are rounded to 0.1: 37 frames in 9.4 s read 3.9 frames/s, i.e. 9.49 s; compare the bounds rounding
    # allows (the shortest a video's time can be against the longest the job's can)
    shortest = [v["frames"] / (v["end_to_end_fps"] + 0.05) for v in summary["videos"]]
    assert max(shortest) <= sum(v["frames"] for v in summary["videos"]) / (summary["frames_per_s"] - 0.05)
    assert max(implied) >= 0.5 * wall
    assert summary["backend"] == "torch on ray (1 actors)"


def test_checkpoint_trained_on_a_video_task_records_its_region(tmp_path):
    from foldedcnn.data.store import load_split, save_split
    from foldedcnn.label.job import checkpoint_roi
    from foldedcnn.train import TrainConfig, train

    images = torch.randint(0, 255, (16, 3, 50, 50), dtype=torch.uint8)
    labels = torch.arange(16) % 2
    for split in ("train", "val"):
        save_split(tmp_path, split, images.numpy(), labels.numpy())
    meta = {"class_names": ["absent", "present"], "video": "v.mp4", "frame_size": [96, 64], "roi": list(ROI),
            "size": [50, 50]}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    train_set, val_set = load_split(tmp_path, "train"), load_split(tmp_path, "val")
    assert train_set.source["roi"] == list(ROI)
    out = tmp_path / "run"
    train(FoldedModel.from_zoo("noscope-coral", 2), train_set, val_set,
          TrainConfig(model="noscope-coral", data=f"npz:{tmp_path}", fold=2, epochs=1, batch=8, progress=False),
          out=out)
    from foldedcnn.checkpoint import read_metadata

    meta = read_metadata(out / "best.safetensors")
    assert checkpoint_roi(meta) == ROI and meta["data_source"]["frame_size"] == [96, 64]


@pytest.mark.parametrize("stride,start", [(1, 0), (1, 7), (3, 4), (5, 8)])
def test_iter_frames_start_skips_exactly_the_first_output_frames(clips, stride, start):
    from foldedcnn.data.video import iter_frames

    every = list(iter_frames(clips["short"], stride))
    resumed = list(iter_frames(clips["short"], stride, start=start))
    assert [f.index for f in resumed] == [f.index for f in every][start:]
    assert all((a.rgb == b.rgb).all() for a, b in zip(every[start:], resumed, strict=True))


def test_decoder_choice_per_video():
    from foldedcnn.data.video import VideoInfo
    from foldedcnn.errors import FoldedCNNError
    from foldedcnn.label._nvdec import check_decoder_request, choose_decoder

    def probed(codec, container="matroska,webm"):
        return VideoInfo(frames=10, width=96, height=64, fps=25.0, codec=codec, container=container)

    assert choose_decoder("cpu", probed("h264"), None) == ("cpu", None)
    assert choose_decoder("auto", probed("h264"), "no CUDA device") == ("cpu", None)
    assert choose_decoder("gpu", probed("hevc"), None) == ("gpu", None)
    assert choose_decoder("auto", probed("hevc"), None) == ("cpu", None)  # measured: the CPU pool is the faster
    assert choose_decoder("gpu", probed("msmpeg4"), None) == ("cpu", "codec msmpeg4 is not decoded by NVDEC; "
                                                                    "decoded on the CPU")
    assert choose_decoder("gpu", probed("h264", "h264"), None) == ("cpu", "a bare h264 stream, in no container: "
                                                                    "NVDEC's reader needs a container's index; "
                                                                    "decoded on the CPU")
    check_decoder_request("auto", "no CUDA device")
    with pytest.raises(FoldedCNNError, match="--decoder gpu: NVDEC cannot be used here \\(no CUDA device\\)"):
        check_decoder_request("gpu", "no CUDA device")
    with pytest.raises(FoldedCNNError, match="--decoder must be one of auto, cpu, gpu"):
        check_decoder_request("nvdec", None)


def test_gpu_decoder_feeds_the_same_job_and_falls_back_for_other_codecs(clips, checkpoint, tmp_path, monkeypatch):
    """NVDEC stood in for by the CPU segment decoder (no GPU here): the job merges its batches with the CPU
    pool's, an mpeg4 video goes to it, an ffv1 one (not an NVDEC codec) to the CPU with a note."""
    import av

    import foldedcnn.label.job as job
    from foldedcnn.label._nvdec import NvdecDecoder
    from foldedcnn.label.frame_source import SegmentDecoder
    ffv1 = tmp_path / "lossless.mkv"
    with av.open(str(ffv1), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for frame in av.open(str(clips["short"])).decode(video=0):
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    args = [clips["long"], ffv1, "--batch", "8", "--chunk-frames", "16"]
    assert _run([checkpoint, *args, "--out", tmp_path / "cpu", "--decoder", "cpu"]) == 0
    monkeypatch.setattr(job, "nvdec_unavailable", lambda device: None)
    monkeypatch.setattr(NvdecDecoder, "_decode", lambda self, t: SegmentDecoder(
        t.path, t.segment, t.rois, t.size, t.stride, t.batch, t.index))
    assert _run([checkpoint, *args, "--out", tmp_path / "gpu", "--decoder", "gpu", "--workers", "2"]) == 0
    for name in ("long.csv", "lossless.csv"):
        assert (tmp_path / "gpu" / name).read_text() == (tmp_path / "cpu" / name).read_text()
    summary = json.loads((tmp_path / "gpu" / "summary.json").read_text())
    assert summary["decoder"] == "gpu+cpu"
    by_name = {Path(v["video"]).name: v for v in summary["videos"]}
    assert by_name["long.mp4"]["decoder"] == "gpu" and by_name["long.mp4"]["note"] is None
    lossless = by_name["lossless.mkv"]
    assert lossless["decoder"] == "cpu" and "ffv1 is not decoded by NVDEC" in lossless["note"]
    # NVDEC's pixels differ from the CPU's: its output is not taken for the CPU decoder's (nor mixed with it)
    assert _run([checkpoint, *args, "--out", tmp_path / "gpu", "--decoder", "cpu"]) == 1
    summary = json.loads((tmp_path / "gpu" / "summary.json").read_text())
    refused = {Path(v["video"]).name: v["error"] for v in summary["videos"]}
    assert "made with other settings (decoder)" in refused["long.mp4"] and refused["lossless.mkv"] is None


def test_a_video_nvdec_fails_on_is_decoded_on_the_cpu_instead_and_stays_there(clips, checkpoint, tmp_path,
                                                                              monkeypatch):
    """NVDEC failing on a video at run time (damaged data, a profile it does not take) failed the video. Its NVDEC
    rows are now dropped and the CPU pool decodes it whole, with a note; the CSV is a CPU-only run's. Its fingerprint
    records it, so a rerun (after a kill, or of the finished job) goes on on the CPU instead of refusing the output
    (its decoder differs) or switching back."""
    import foldedcnn.label.job as job
    from foldedcnn.errors import FoldedCNNError
    from foldedcnn.label._chunk_store import ChunkStore
    from foldedcnn.label._nvdec import NvdecDecoder
    from foldedcnn.label.frame_source import SegmentDecoder

    def nvdec(self, t):  # the CPU segment decoder stands in for NVDEC, which fails 2 batches into the long video
        for n, batch in enumerate(SegmentDecoder(t.path, t.segment, t.rois, t.size, t.stride, t.batch, t.index)):
            if n == 2 and t.path.name == "long.mp4" and failing:
                raise RuntimeError("CUVID_ERROR: bad packet")
            yield batch

    failing = True
    args = [clips["long"], clips["short"], "--batch", "8", "--chunk-frames", "16", "--workers", "2"]
    assert _run([checkpoint, *args, "--out", tmp_path / "cpu", "--decoder", "cpu"]) == 0
    monkeypatch.setattr(job, "nvdec_unavailable", lambda device: None)
    monkeypatch.setattr(NvdecDecoder, "_decode", nvdec)
    assert _run([checkpoint, *args, "--out", tmp_path / "gpu", "--decoder", "gpu"]) == 0
    for name in ("long.csv", "short.csv"):
        assert (tmp_path / "gpu" / name).read_text() == (tmp_path / "cpu" / name).read_text()
    summary = json.loads((tmp_path / "gpu" / "summary.json").read_text())
    by_name = {Path(v["video"]).name: v for v in summary["videos"]}
    assert by_name["short.mp4"]["decoder"] == "gpu" and by_name["long.mp4"]["decoder"] == "cpu"
    assert by_name["long.mp4"]["note"] == ("NVDEC failed on it (" + str(clips["long"]) + ": NVDEC decoding failed "
                                           "(CUVID_ERROR: bad packet)): decoded on the CPU instead")
    assert by_name["long.mp4"]["error"] is None and summary["decoder"] == "gpu+cpu"
    failing = False  # a rerun: the finished job says the same, NVDEC's working now or not
    assert _run([checkpoint, *args, "--out", tmp_path / "gpu", "--decoder", "gpu"]) == 0
    assert json.loads((tmp_path / "gpu" / "summary.json").read_text())["videos"][0]["note"] == by_name[
        "long.mp4"]["note"]

    def killed(self, chunks, held=None, seen=None):
        raise FoldedCNNError("killed before publishing")

    failing = True
    with monkeypatch.context() as m:  # killed while the CPU redoes it: its chunks are the CPU's
        m.setattr(ChunkStore, "finish", killed)
        assert _run([checkpoint, clips["long"], "--out", tmp_path / "kill", "--decoder", "gpu", *args[2:]]) == 1
    failing = False
    assert _run([checkpoint, clips["long"], "--out", tmp_path / "kill", "--decoder", "gpu", *args[2:]]) == 0
    assert (tmp_path / "kill" / "long.csv").read_text() == (tmp_path / "cpu" / "long.csv").read_text()
    (video,) = json.loads((tmp_path / "kill" / "summary.json").read_text())["videos"]
    assert video["decoder"] == "cpu" and video["note"].startswith("NVDEC failed on it (")


def test_decoder_both_splits_whole_videos_by_nvdecs_share_of_the_frames():
    from foldedcnn.data.video import VideoInfo
    from foldedcnn.label._decoder_split import DecoderChooser

    def probed(frames, codec="h264"):
        return VideoInfo(frames=frames, width=96, height=64, fps=25.0, codec=codec, container="mov,mp4,m4a,3gp,3g2,mj2")

    chooser = DecoderChooser("both", None, share=0.34)
    picks = [chooser(probed(100))[0] for _ in range(16)]
    assert [i for i, d in enumerate(picks) if d == "gpu"] == [0, 3, 6, 9, 12, 15]  # 6 of 16, in the job's order
    assert chooser.frames == {"gpu": 600, "cpu": 1000}
    assert chooser.note() == ("NVDEC took 6 of 16 videos (38% of the frames; --nvdec-share 0.34), the CPU decoder "
                              "processes the rest")
    mixed = DecoderChooser("both", None, share=0.5)
    assert mixed(probed(300, codec="msmpeg4"))[0] == "cpu"  # NVDEC cannot: counts on the CPU's side
    # NVDEC takes the next videos while its frames so far are at most half of all: 0, 100, 200, 300 of 300-600
    assert [mixed(probed(100))[0] for _ in "bcdef"] == ["gpu", "gpu", "gpu", "gpu", "cpu"]
    for requested in ("cpu", "auto"):
        assert DecoderChooser(requested, None)(probed(10)) == ("cpu", None)
    assert DecoderChooser("gpu", None)(probed(10)) == ("gpu", None)
    assert DecoderChooser("gpu", None).note() is None


def test_run_help_states_the_default_nvdec_share(capsys):
    from foldedcnn.label._decoder_split import NVDEC_SHARE

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert f"(default {NVDEC_SHARE}:" in " ".join(capsys.readouterr().out.split())  # the CLI does not import it


@settings(max_examples=60, deadline=None)
@given(frames=st.lists(st.integers(1, 5000), min_size=1, max_size=40), share=st.floats(0.05, 0.95))
def test_decoder_both_keeps_nvdec_within_one_video_of_its_share(frames, share):
    from foldedcnn.data.video import VideoInfo
    from foldedcnn.label._decoder_split import DecoderChooser

    def run():
        chooser, picks = DecoderChooser("both", None, share), []
        for i, n in enumerate(frames):
            picks.append(chooser(VideoInfo(frames=n, width=8, height=8, fps=25.0, codec="h264",
                                           container="mov,mp4,m4a,3gp,3g2,mj2")))
            total = sum(chooser.frames.values())
            assert chooser.frames["gpu"] - share * total <= max(frames[: i + 1])  # overshoots by one video at most
        return picks

    assert run() == run()  # the same videos in the same order: the same split (a resumed job keeps it)


def test_decoder_both_runs_nvdec_and_the_cpu_pool_at_once(clips, checkpoint, tmp_path, monkeypatch, capsys):
    """--decoder both, NVDEC stood in for by the CPU segment decoder: each video decoded by one side, the CSVs
    those of a CPU-only run, summary.json saying how the videos were split."""
    import foldedcnn.label.job as job
    from foldedcnn.label._nvdec import NvdecDecoder
    from foldedcnn.label.frame_source import SegmentDecoder

    copies = [clips["long"], clips["short"], shutil.copy(clips["short"], tmp_path / "third.mp4")]
    args = [*copies, "--batch", "8", "--chunk-frames", "16", "--workers", "2"]
    assert _run([checkpoint, *args, "--out", tmp_path / "cpu", "--decoder", "cpu"]) == 0
    monkeypatch.setattr(job, "nvdec_unavailable", lambda device: None)
    monkeypatch.setattr(NvdecDecoder, "_decode", lambda self, t: SegmentDecoder(
        t.path, t.segment, t.rois, t.size, t.stride, t.batch, t.index))
    assert _run([checkpoint, *args, "--out", tmp_path / "both", "--decoder", "both", "--nvdec-share", "0.5"]) == 0
    for name in ("long.csv", "short.csv", "third.csv"):
        assert (tmp_path / "both" / name).read_text() == (tmp_path / "cpu" / name).read_text()
    summary = json.loads((tmp_path / "both" / "summary.json").read_text())
    decoders = {Path(v["video"]).name: v["decoder"] for v in summary["videos"]}
    assert decoders == {"long.mp4": "gpu", "short.mp4": "cpu", "third.mp4": "cpu"}  # 300 frames, then 37 and 37
    assert summary["decoder"] == "gpu+cpu" and summary["decoder_note"].startswith("NVDEC took 1 of 3 videos")
    assert _run([checkpoint, *args, "--out", tmp_path / "x", "--decoder", "both", "--nvdec-share", "1.5"]) == 2
    assert "--nvdec-share must be between 0 and 1" in capsys.readouterr().err


def test_decoder_gpu_without_a_gpu_is_one_clear_error(clips, checkpoint, tmp_path, capsys):
    assert _run([checkpoint, clips["short"], "--out", tmp_path, "--decoder", "gpu"]) == 2
    assert "--decoder gpu: NVDEC cannot be used here" in capsys.readouterr().err


class _FakeNvdec:
    """PyNvVideoCodec's SimpleDecoder as the reader uses it, backed by PyAV on the CPU: planar RGB frames
    (3, H, W) uint8 torch tensors handed out through DLPack, a seek to a frame index, then the next frames in
    order. It counts the frames it decodes, so a reader that decodes anything twice is caught."""

    class OutputColorType:
        RGBP = "rgbp"

    decoded = 0

    class SimpleDecoder:
        def __init__(self, path, gpu_id=0, use_device_memory=True, output_color_type=None):
            import av

            assert output_color_type == "rgbp" and use_device_memory
            with av.open(path) as container:
                self._frames = [torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1).contiguous()
                                for f in container.decode(video=0)]
            self._at = 0

        def __len__(self):
            return len(self._frames)

        def get_stream_metadata(self):
            return type("Meta", (), {"average_fps": 25.0})()

        def seek_to_index(self, index):
            self._at = index

        def get_batch_frames(self, n):
            out = self._frames[self._at:self._at + n]
            self._at += len(out)
            _FakeNvdec.decoded += len(out)
            return out


@pytest.mark.parametrize("stride,first_row,stop_row", [(1, 0, None), (1, 40, 120), (3, 8, 56), (2, 96, None)])
def test_nvdec_reader_seeks_once_then_reads_the_segment_in_order(clips, monkeypatch, stride, first_row, stop_row):
    """Each segment's rows come out in batches of `batch`, each frame decoded once, the region cut from the
    frame and resized by area averaging: what the CPU reader gives, up to the resampler."""
    import torch.nn.functional as F

    from foldedcnn.data.video import index_video, iter_frames
    from foldedcnn.label._decode_tasks import DecodeTask
    from foldedcnn.label._nvdec import NvdecDecoder
    from foldedcnn.label.frame_source import Segment

    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", _FakeNvdec)
    _FakeNvdec.decoded = 0
    path = clips["long"]
    tasks = [DecodeTask(path, Segment(0, first_row, stop_row), (ROI,), (24, 32), stride, 8, index_video(path)),
             DecodeTask(path, Segment(1, 0, 16), (ROI,), (24, 32), stride, 8, None)]
    batches: dict[int, list] = {0: [], 1: []}
    for event in _drain(NvdecDecoder(tasks, device="cpu", sessions=2)):
        batches[event.task.segment.video].append(event.batch)
    every = list(iter_frames(path, stride))
    stop = len(every) if stop_row is None else stop_row
    got = batches[0]
    assert [b.first for b in got] == list(range(first_row, stop, 8))
    assert [i for b in got for i in b.index] == [f.index for f in every[first_row:stop]]
    x, y, w, h = ROI
    full = torch.stack([torch.from_numpy(f.rgb).permute(2, 0, 1) for f in every[first_row:stop]])
    expected = F.interpolate(full[:, :, y:y + h, x:x + w].float(), size=(24, 32), mode="area").round().to(torch.uint8)
    assert torch.equal(torch.cat([b.images for b in got]), expected)
    last = 300 if stop_row is None else (stop_row - 1) * stride + 1  # the frame after the segment's last frame
    assert _FakeNvdec.decoded == last - first_row * stride + (16 - 1) * stride + 1


def _drain(nvdec):
    """The Decoded events of an NvdecDecoder until all its tasks finished (each without an error)."""
    from foldedcnn.label._decode_tasks import Decoded, Finished

    while nvdec.pending:
        event = nvdec.events.get(timeout=60)
        if isinstance(event, Finished):
            assert event.error is None
            nvdec.pending -= 1
        else:
            assert isinstance(event, Decoded)
            yield event


def test_nvdec_reader_takes_regions_in_the_frame_as_shown(tmp_path, monkeypatch):
    """NVDEC gives frames as stored: a portrait video's regions are cut from the stored box, resized to the turned
    size and turned, so they are what the CPU reader's frames as shown give, up to the resampler; a region outside
    the shown frame fails the segment (the job redoes it on the CPU, which names the error)."""
    import torch.nn.functional as F

    from foldedcnn.data.video import index_video, iter_frames
    from foldedcnn.label._decode_tasks import DecodeTask
    from foldedcnn.label._nvdec import NvdecDecoder
    from foldedcnn.label.frame_source import Segment

    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", _FakeNvdec)
    path = write_turned_clip(tmp_path / "portrait.mp4", 20, 270)
    roi = (8, 40, 48, 48)
    task = DecodeTask(path, Segment(0, 0, None), (roi,), (24, 32), 1, 8, index_video(path))
    images = torch.cat([event.batch.images for event in _drain(NvdecDecoder([task], device="cpu", sessions=1))])
    full = torch.stack([torch.from_numpy(f.rgb).permute(2, 0, 1) for f in iter_frames(path)]).float()
    assert full.shape == (20, 3, 96, 64)  # the CPU reader's frames as shown
    x, y, w, h = roi
    expected = F.interpolate(full[:, :, y:y + h, x:x + w], size=(24, 32), mode="area").round().to(torch.uint8)
    assert images.shape == (20, 3, 24, 32) and (images.int() - expected.int()).abs().max() <= 1
    nvdec = NvdecDecoder([DecodeTask(path, Segment(0, 0, None), ((40, 8, 48, 48),), (24, 32), 1, 8, None)],
                         device="cpu", sessions=1)
    finished = nvdec.events.get(timeout=60)
    assert "outside the 64x96 frame shown rotated 90° clockwise" in finished.error


def test_nvdec_reader_cuts_every_region_of_a_frame(clips, monkeypatch):
    """Several regions: each frame's regions are cut and resized one by one and stacked along the channels,
    (B, 3R, h, w), as the CPU decoder stacks them."""
    import torch.nn.functional as F

    from foldedcnn.data.video import index_video, iter_frames
    from foldedcnn.label._decode_tasks import DecodeTask
    from foldedcnn.label._nvdec import NvdecDecoder
    from foldedcnn.label.frame_source import Segment

    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", _FakeNvdec)
    path = clips["short"]
    task = DecodeTask(path, Segment(0, 0, None), (ROI, ROI2), (24, 32), 1, 8, index_video(path))
    images = torch.cat([event.batch.images for event in _drain(NvdecDecoder([task], device="cpu", sessions=1))])
    full = torch.stack([torch.from_numpy(f.rgb).permute(2, 0, 1) for f in iter_frames(path)]).float()
    assert images.shape == (37, 6, 24, 32)
    for r, (x, y, w, h) in enumerate((ROI, ROI2)):
        expected = F.interpolate(full[:, :, y:y + h, x:x + w], size=(24, 32), mode="area").round().to(torch.uint8)
        assert torch.equal(images[:, 3 * r:3 * r + 3], expected)
