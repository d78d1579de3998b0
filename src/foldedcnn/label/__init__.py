"""The video-labelling job (`foldedcnn run`): every frame of many videos through one Engine.

Videos are split into segments (frame_source) that a pool of decoder processes (_decode_pool)
decodes at once, converting only the region of interest, into shared memory; one Engine labels the
batches, and each video's CSV is written in crash-safe chunks (_chunk_store) that a rerun resumes;
summary.json reports each video's counts, speeds or error. `run_job_ray` runs the same segments on
Ray. `calibrate_checkpoint` sets the cascade's thresholds to target error rates on held-out data;
`write_report` renders a run's labels as one HTML page. Names are imported lazily, so decoder
processes start without torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "Calibration": "calibration",
    "CalibrationError": "calibration",
    "calibrate_checkpoint": "calibration",
    "calibrate_scores": "calibration",
    "stored_calibration": "calibration",
    "Report": "report",
    "ReportError": "report",
    "write_report": "report",
    "FrameBatch": "frame_source",
    "Segment": "frame_source",
    "SegmentDecoder": "frame_source",
    "plan_segments": "frame_source",
    "JobConfig": "job",
    "JobSummary": "job",
    "VideoResult": "job",
    "run_job": "job",
    "run_job_ray": "ray_job",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
