"""benchmarks/rerun_plan.py on a few small clips: both plannings of the rerun find every video done, and the table
gives each a time."""

import sys

from bench_scripts import bench_script, markdown_rows


def test_the_rerun_benchmark_plans_both_ways_over_the_videos_it_labelled(tmp_path, monkeypatch):
    out = tmp_path / "rerun.md"
    argv = ["rerun_plan.py", "--videos", "3", "--frames", "4", "--repeats", "1", "--workers", "1", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with bench_script("rerun_plan") as rerun_plan:
        assert rerun_plan.main() == 0  # it checks that each rerun found every video done
    rows = markdown_rows(out.read_text().split("\n\n")[2])
    assert [r["planning"] for r in rows] == ["probe, fingerprint and counts kept (now)",
                                                "each video and CSV read again (before)"]
    assert all(float(r["plan_s"].split()[0]) > 0 for r in rows) and "Read again / kept:" in out.read_text()
