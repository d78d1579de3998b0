"""What a run read, kept for a rerun (label._kept_reads): used only for the file's same status, never for a video
modified just before it was read, and a damaged record is read as none."""

import json
import os
import time

from video_clips import write_square_clip

from foldedcnn.data.video import probe_video
from foldedcnn.fsio import file_fingerprint
from foldedcnn.label._kept_reads import PROBE_FILE, file_status, keep, kept_probe, probe_to_keep, read_kept


def _read(path):
    return {"info": probe_video(path), "content": file_fingerprint(path), "status": file_status(path)}


def test_what_was_read_comes_back_for_the_same_status_only(tmp_path):
    video = write_square_clip(tmp_path / "cam.mp4", 30)
    os.utime(video, (time.time() - 60,) * 2)
    probed = _read(video)
    parts = tmp_path / "parts"
    parts.mkdir()
    keep(parts / PROBE_FILE, probed["status"], probe_to_keep(probed))
    kept = kept_probe(parts, file_status(video))
    assert kept == {**probed, "kept": True} and kept["info"].frames == 30
    os.utime(video, (time.time() - 30,) * 2)  # touched: its status is another
    assert kept_probe(parts, file_status(video)) is None
    assert kept_probe(parts, None) is None  # a file that cannot be read


def test_a_file_modified_just_before_it_was_read_or_unreadable_is_not_kept(tmp_path):
    video = write_square_clip(tmp_path / "cam.mp4", 30)
    assert probe_to_keep(_read(video)) is None  # modified within SETTLED_S: a write in the same tick could follow
    os.utime(video, (time.time() - 10,) * 2)
    assert probe_to_keep(_read(video)) is not None
    from foldedcnn.label._survey import Unreadable

    assert probe_to_keep({**_read(video), "info": Unreadable("not a video")}) is None


def test_a_damaged_record_is_none(tmp_path):
    video = write_square_clip(tmp_path / "cam.mp4", 30)
    status = file_status(video)
    for text in ("{", "[]", '{"status": 1}', json.dumps({"status": status}), json.dumps([status, {}]),
                 json.dumps({"status": status, "kept": {"info": {"frames": 1}}}),
                 json.dumps({"status": status, "kept": {"info": {"frames": 30, "width": 96}, "content": "x"}})):
        (tmp_path / PROBE_FILE).write_text(text)
        assert kept_probe(tmp_path, status) is None, text
    assert read_kept(tmp_path / "none.json", status) is None
    keep(tmp_path / "gone" / "counts.json", status, {"frames": 1})  # cannot be written: nothing, no error
    assert not (tmp_path / "gone").exists()
