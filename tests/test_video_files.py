"""Which files `foldedcnn run` labels: folders expand to their videos; a video given twice is refused."""

from pathlib import Path

import pytest

from foldedcnn import FoldedCNNError
from foldedcnn.label._kept_reads import file_status
from foldedcnn.label.job import video_keys
from foldedcnn.label.video_files import check_each_once, expand_videos, modified_within


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_a_folder_gives_its_videos_at_any_depth_sorted_and_files_stay_as_given(tmp_path):
    cams = tmp_path / "cams"
    b, a, deep, upper = (_touch(cams / "b.mp4"), _touch(cams / "a.mkv"), _touch(cams / "north" / "2026" / "c.ts"),
                         _touch(cams / "D.MOV"))
    _touch(cams / "notes.txt"), _touch(cams / "thumbs" / "a.jpg")
    _touch(cams / "._b.mp4"), _touch(cams / ".trash" / "old.mp4")  # macOS companions, hidden folders
    (cams / "empty-dir.mp4").mkdir()  # a folder named like a video is not one
    loose = tmp_path / "recording.bin"  # named on its own: labelled whatever its suffix, as before
    assert expand_videos([loose, cams]) == [loose, upper, a, b, deep]


def test_a_folder_gives_the_bare_streams_cameras_dump(tmp_path):
    """A camera's .h264/.h265 dump, an IP camera's MJPEG one, a bare MPEG-2 or AV1 stream, a WebRTC recording's
    IVF: labelled from a folder too."""
    dumps = [_touch(tmp_path / name) for name in ("a.h264", "b.265", "c.mjpeg", "d.MJPG", "e.m2v", "f.obu", "g.ivf")]
    assert expand_videos([tmp_path]) == dumps


def test_a_folder_without_videos_is_refused_naming_the_suffixes(tmp_path):
    _touch(tmp_path / "stills" / "a.png")
    with pytest.raises(FoldedCNNError, match=r"no video under .*stills \(files ending in .*\.mp4.*\); name other"):
        expand_videos([tmp_path / "stills"])


def test_a_video_given_twice_is_refused_also_by_another_path(tmp_path):
    cams = tmp_path / "cams"
    video = _touch(cams / "a.mp4")
    _touch(cams / "b.mp4")
    check_each_once(expand_videos([cams]))
    with pytest.raises(FoldedCNNError, match=r"a.mp4 is given twice: each video is labelled once"):
        check_each_once([video, video])
    with pytest.raises(FoldedCNNError, match=r"is given twice \(as .*cams/a.mp4 and .*cams/\.\./cams/a.mp4\)"):
        check_each_once(expand_videos([cams, cams / ".." / "cams" / "a.mp4"]))


def test_min_age_leaves_out_files_modified_lately_or_stamped_ahead_of_this_clock(tmp_path):
    import os

    video = _touch(tmp_path / "cam.ts")
    os.utime(video, (1_000_000.0, 1_000_000.0))
    status = file_status(video)
    assert modified_within(status, 60, 1_000_060.0) is None  # a minute old: labelled
    assert modified_within(status, 60, 1_000_059.4) == ("modified 59 s ago, within --min-age 60 s: still being "
                                                       "written? a later run labels it")
    assert modified_within(status, 60, 999_990.0).startswith("modified 10 s in the future (this machine's clock")
    assert modified_within(file_status(tmp_path / "gone.ts"), 60, 1_000_000.0) is None  # the job records a missing file


def test_videos_sharing_a_file_name_get_distinct_output_names(tmp_path):
    videos = [tmp_path / "north" / "today.mp4", tmp_path / "south" / "today.mp4", tmp_path / "east.mp4"]
    keys = video_keys(videos)
    assert keys[2] == "east" and len(set(keys)) == 3 and all(k.startswith("today-") for k in keys[:2])
    assert video_keys(videos) == keys  # stable: a rerun resumes the same CSVs


def test_many_videos_are_read_by_several_processes_as_by_one(tmp_path):
    import numpy as np
    from video_clips import write_square_clip

    from foldedcnn.label._survey import Unreadable, keyframe_index, probe_and_fingerprint, survey

    clip = write_square_clip(tmp_path / "clip.mp4", 30)
    paths = [clip] * 9 + [write_square_clip(tmp_path / "other.mp4", 12), tmp_path / "missing.mp4",
                          _touch(tmp_path / "empty.mp4")]
    alone = survey(probe_and_fingerprint, paths, 1, False, "reading")
    shared = survey(probe_and_fingerprint, paths, 2, False, "reading")  # 12 videos > 4 per process: a pool
    assert shared == alone and alone[0]["info"].frames == 30 and alone[9]["info"].frames == 12
    assert all(isinstance(p["info"], Unreadable) and isinstance(p["content"], Unreadable) for p in alone[10:])
    assert "not found" in alone[10]["info"].message
    indexes = survey(keyframe_index, paths, 2, False, "indexing")
    assert [i.frames for i in indexes[:10]] == [30] * 9 + [12] and isinstance(indexes[11], Unreadable)
    assert np.array_equal(indexes[0].pts, keyframe_index(clip).pts)
