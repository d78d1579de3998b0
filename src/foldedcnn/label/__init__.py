"""The video-labelling job (`foldedcnn run`): every frame of many videos through one Engine.

Frames are decoded and cropped to the checkpoint's region (frame_source), labelled in batches,
and written per video as a CSV in crash-safe chunks that a rerun resumes; summary.json reports
each video's counts, speeds or error. `run_job_ray` runs the same job on Ray Data.
"""

from .frame_source import FrameBatch, FrameSource
from .job import JobConfig, JobSummary, VideoResult, run_job
from .ray_job import run_job_ray

__all__ = ["FrameBatch", "FrameSource", "JobConfig", "JobSummary", "VideoResult", "run_job", "run_job_ray"]
