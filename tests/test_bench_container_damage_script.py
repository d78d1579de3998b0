"""benchmarks/container_damage.py on vtest.avi once: every frame of every file it damaged is a row or counted missing
(summary.json's missing_frames), the intact ones lose none, and a cut-out stretch is counted missing."""

import sys

from bench_scripts import bench_script


def test_the_container_damage_check_accounts_for_every_frame_of_every_file(tmp_path, monkeypatch):
    argv = ["container_damage.py", "--seeds", "1", "--bursts", "30", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with bench_script("container_damage") as container_damage:
        assert container_damage.main() == 0
    lines = (tmp_path / "container_damage.md").read_text().split("\n\n")[3].splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {r["file"]: r for r in (dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
                                   for line in lines[2:])}
    assert len(rows) == 9 and all(r["rows + missing"] == "795 of 795" for r in rows.values())
    for name in ("H.264 MKV", "H.264 MPEG-TS", "MPEG-2 MPEG-PS"):
        intact, cut = rows[f"{name}, intact"], rows[f"{name}, 5% of its bytes cut out"]
        assert (intact["outcome"], intact["rows"], intact["missing"], intact["1 = 3 decoders"]) == (
            "ok", "795", "0", "same CSV")
        assert cut["outcome"] == "ok" and int(cut["missing"]) > 20 and cut["1 = 3 decoders"] == "same CSV"
