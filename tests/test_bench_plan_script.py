"""benchmarks/plan_long.py on a 10-minute recording: its table reads the file it made, and the job's tasks carry
windows of the index (together about one index), not one whole index each."""

import sys

from bench_scripts import bench_script


def test_the_plan_benchmark_reports_the_recording_it_made_and_tasks_that_share_one_index(tmp_path, monkeypatch):
    out = tmp_path / "plan.md"
    argv = ["plan_long.py", "--hours", "0.1", "--workers", "4", "--repeats", "1", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with bench_script("plan_long") as plan_long:
        assert plan_long.main() == 0
    header, _, row = out.read_text().split("\n\n")[2].splitlines()
    cells = dict(zip(header.strip("|").split("|"), row.strip("|").split("|"), strict=True))
    cells = {k.strip(): v.strip() for k, v in cells.items()}
    assert cells["frames"] == "18,000" and cells["keyframes"] == "300" and cells["tasks"] == "8"
    whole_index_mb = 18_000 * 8 / 1e6  # int64 timestamps
    assert float(cells["all tasks MB"]) < 2 * whole_index_mb  # a whole index each would be 8x
