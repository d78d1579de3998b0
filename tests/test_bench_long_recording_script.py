"""benchmarks/long_recording.py on a 10-minute recording: its table reads the file it made, and the job's tasks
carry windows of the index (together about one index), not one whole index each."""

import sys

from bench_scripts import bench_script, markdown_rows


def test_the_long_recording_benchmark_reads_the_file_it_made_and_its_tasks_share_one_index(tmp_path, monkeypatch):
    out = tmp_path / "long.md"
    argv = ["long_recording.py", "--hours", "0.1", "--workers", "4", "--repeats", "1", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with bench_script("long_recording") as long_recording:
        assert long_recording.main() == 0
    (cells,) = markdown_rows(out.read_text().split("\n\n")[2])
    assert cells["frames"] == "18,000" and cells["keyframes"] == "300" and cells["tasks"] == "8"
    whole_index_mb = 18_000 * 8 / 1e6  # int64 timestamps
    assert float(cells["all tasks MB"]) < 2 * whole_index_mb  # a whole index each would be 8x
