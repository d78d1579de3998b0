"""benchmarks/damaged_recording.py on vtest.avi once: every file it made is labelled whole (its rows are the
video's frames), the intact ones without an undecodable frame, the damaged H.264 one with some."""

import sys

from bench_scripts import bench_script, markdown_rows


def test_the_damaged_recording_benchmark_labels_every_file_it_made_whole(tmp_path, monkeypatch):
    argv = ["damaged_recording.py", "--long", "1", "--share", "0.01", "--repeats", "1", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with bench_script("damaged_recording") as damaged_recording:
        assert damaged_recording.main() == 0
    rows = {r["file"]: r for r in markdown_rows((tmp_path / "damaged_recording.md").read_text().split("\n\n")[3])}
    assert list(rows) == ["MS-MPEG-4 AVI, intact", "MS-MPEG-4 AVI, damaged", "H.264 B-frames MP4, intact",
                          "H.264 B-frames MP4, damaged"]
    assert all(r["outcome"] == "ok" and r["rows"] == "795" for r in rows.values())
    assert rows["MS-MPEG-4 AVI, intact"]["undecodable"] == rows["H.264 B-frames MP4, intact"]["undecodable"] == "0"
    assert rows["H.264 B-frames MP4, damaged"]["packets damaged"] == "8"  # 1 % of 795
    assert int(rows["H.264 B-frames MP4, damaged"]["undecodable"]) > 0
