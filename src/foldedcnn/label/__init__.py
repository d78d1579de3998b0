"""The video-labelling job (`foldedcnn run`): every frame of many videos through one Engine.

Frames are decoded and cropped to the checkpoint's region (frame_source), labelled in batches,
and written per video as a CSV in crash-safe chunks that a rerun resumes; summary.json reports
each video's counts, speeds or error. `run_job_ray` runs the same job on Ray Data. `calibrate_checkpoint`
sets the cascade's thresholds to target error rates on held-out data; `write_report` renders a run's
labels as one HTML page.
"""

from .calibration import Calibration, CalibrationError, calibrate_checkpoint, calibrate_scores, stored_calibration
from .frame_source import FrameBatch, FrameSource
from .job import JobConfig, JobSummary, VideoResult, run_job
from .ray_job import run_job_ray
from .report import Report, ReportError, write_report

__all__ = ["Calibration", "CalibrationError", "FrameBatch", "FrameSource", "JobConfig", "JobSummary", "Report",
           "ReportError", "VideoResult", "calibrate_checkpoint", "calibrate_scores", "run_job", "run_job_ray",
           "stored_calibration", "write_report"]
