"""benchmarks/container_damage.py on vtest.avi once: every frame of every file it damaged is a row or counted missing
(summary.json's missing_frames), but AVI's, which counts its frames (one cut out is truncated); the intact ones lose
none, and a cut-out stretch is counted missing."""

import sys

from bench_scripts import bench_script, markdown_rows


def test_the_container_damage_check_accounts_for_every_frame_of_every_file(tmp_path, monkeypatch):
    argv = ["container_damage.py", "--seeds", "1", "--bursts", "30", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with bench_script("container_damage") as container_damage:
        assert container_damage.main() == 0
    rows = {r["file"]: r for r in markdown_rows((tmp_path / "container_damage.md").read_text().split("\n\n")[3])}
    avi = {k: r for k, r in rows.items() if k.startswith("MS-MPEG-4 AVI")}  # AVI counts frames: cut ones are gone
    assert len(rows) == 12 and all(r["rows + missing"] == "795 of 795" for k, r in rows.items() if k not in avi)
    cut = avi["MS-MPEG-4 AVI, 5% of its bytes cut out"]
    assert cut["outcome"].startswith("truncated: decoded") and cut["1 = 3 decoders"] == "same CSV"
    for name in ("MS-MPEG-4 AVI", "H.264 MKV", "H.264 MPEG-TS", "MPEG-2 MPEG-PS"):
        intact = rows[f"{name}, intact"]
        assert (intact["outcome"], intact["rows"], intact["missing"], intact["1 = 3 decoders"]) == (
            "ok", "795", "0", "same CSV")
    for name in ("H.264 MKV", "H.264 MPEG-TS", "MPEG-2 MPEG-PS"):
        cut = rows[f"{name}, 5% of its bytes cut out"]
        assert cut["outcome"] == "ok" and int(cut["missing"]) > 20 and cut["1 = 3 decoders"] == "same CSV"
