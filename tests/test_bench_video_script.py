"""benchmarks/video.py: its "cores busy" covers the job's own clock (what end-to-end frames/s count), not the
checkpoint loading before it."""

import torch
from bench_scripts import bench_script
from video_clips import write_square_clip

from foldedcnn.checkpoint import save_checkpoint
from foldedcnn.folded import FoldedModel
from foldedcnn.label import JobConfig, job, run_job


def test_cores_busy_is_counted_from_the_jobs_clock_start(tmp_path, monkeypatch):
    clip = write_square_clip(tmp_path / "clip.mp4", 20)
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "coral.safetensors", FoldedModel.from_zoo("noscope-coral", 4).eval(),
                           class_names=["absent", "present"])
    events = []
    load = job.load_checkpoint
    monkeypatch.setattr(job, "load_checkpoint", lambda *a, **k: events.append("checkpoint loaded") or load(*a, **k))
    real_clock = job.start_clock
    with bench_script("video") as video:
        monkeypatch.setattr(video, "cpu_jiffies", lambda: events.append("/proc/stat read") or (1, 2))
        marks = {}
        with video.jiffies_at_job_start(marks):
            summary = run_job(JobConfig(ckpt, [clip], tmp_path / "out", roi=(8, 8, 64, 48), batch=8, backend="torch",
                                        workers=1, progress=False))
    assert summary.failed == [] and summary.videos[0].frames == 20
    assert events == ["checkpoint loaded", "/proc/stat read"] and marks == {"start": (1, 2)}
    assert job.start_clock is real_clock  # put back
