"""Planning a job: every video probed, indexed and split into decoder tasks (segments of batch-aligned rows)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from functools import partial
from itertools import compress
from typing import TYPE_CHECKING

from ..data.video import VideoIndex, VideoInfo
from ..errors import FoldedCNNError
from ._decode_tasks import DecodeTask
from ._job_video import JobVideo, by_video
from ._kept_reads import file_status
from ._survey import keyframe_index, read_for_plan, survey
from .frame_source import plan_segments, segment_index
from .video_files import modified_within

if TYPE_CHECKING:
    from .job import JobConfig

# A video of at least this many frames has its keyframe index kept beside its chunks (ChunkStore.keep_index), so a
# rerun after a kill resumes at once: indexing reads the container's sample table where it lists every frame
# (data._video_probe.listed_index), and otherwise demuxes the whole file (0.3 s for vtest.avi x 100, 79,500 frames,
# 813 MB, from the page cache, and the time of reading every byte of it from a disk otherwise: a 24-hour
# recording holds tens of GB). Shorter videos keep none: a job of 100,000 clips writes no file per clip for it.
INDEX_KEPT_FROM = 50_000


def plan_tasks(videos: list[JobVideo], cfg: JobConfig, size: tuple[int, int], workers: int,
               decoder_for: Callable[[VideoInfo], tuple[str, str | None]]) -> list[DecodeTask]:
    """Choose every video's decoder (`decoder_for(info)`, asked once per video, see JobVideo.plan), index it (with
    its probe when it looks unlabelled, ChunkStore.may_need_index; not when a killed run of the job kept its index:
    ChunkStore.kept_index), and split the missing
    rows of all of them into about two segments per worker (each at least a batch), so many videos and one
    long video alike keep every worker busy, longest segments first; an output that cannot be planned gets its
    error recorded. A video whose frames cannot be found by seeking (index not seekable) is not split: each
    segment of it would decode from its first frame. `videos` are the job's outputs, the regions of one video
    next to each other (with cfg.min_age, those of a video modified within it are left out before anything reads
    it: JobVideo.leave_out): a video is read and decoded once for all its regions (a task's `rois`), and its
    segments cover the chunks any of them misses (one that has a chunk already drops its rows again). Many
    videos are probed and indexed by `workers` processes (_survey)."""
    groups = by_video(videos)
    statuses = [file_status(g[0].path) for g in groups]  # before anything reads the files
    if cfg.min_age:
        now = time.time()
        taken = [not _left_out(g, modified_within(s, cfg.min_age, now)) for g, s in zip(groups, statuses, strict=True)]
        groups, statuses = list(compress(groups, taken)), list(compress(statuses, taken))
    surveys = _read_for_plan(groups, statuses, cfg, workers)
    started = []
    for outputs, probed in zip(groups, surveys, strict=True):
        once = functools.cache(decoder_for)  # the video's regions share one answer
        _each(outputs, lambda v, probed=probed, once=once: v.plan(cfg, once, probed))
        if live := [v for v in outputs if not v.finished and v.result.error is None]:
            started.append((live, probed))
    for live, probed in started:  # unless read with the probe, the index a killed run of the job kept, if any
        if probed.get("index") is None:
            probed["index"] = next((i for v in live if (i := v.store.kept_index()) is not None), None)
    unindexed = [(live[0].path, probed) for live, probed in started if probed["index"] is None]
    indexes = survey(keyframe_index, [path for path, _ in unindexed], workers, cfg.progress, "indexing")
    for (_, probed), index in zip(unindexed, indexes, strict=True):
        probed["index"] = index
    todo = []
    for live, probed in started:
        _each(live, lambda v, probed=probed: v.plan_rows(cfg, probed))
        if live := [v for v in live if v.result.error is None]:
            if live[0].index.frames >= INDEX_KEPT_FROM:  # once per video, beside its first output's chunks
                live[0].store.keep_index(live[0].index)
            todo.append((live, set.intersection(*(v.rows.done for v in live))))
    missing = sum(live[0].rows.rows - len(done) * cfg.chunk_frames for live, done in todo)
    share = max(cfg.batch, -(-missing // (2 * workers)))
    tasks, cost = [], {}
    for live, done in todo:
        v = live[0]
        lead_in = partial(lead_in_frames, v.index, cfg.stride)
        segments = plan_segments(v.number, v.rows.rows, done, cfg.chunk_frames, cfg.batch,
                                 share if v.index.seekable else max(1, v.rows.rows), lead_in)
        for out in live:
            out.segments_left = len(segments)
        _each(live, JobVideo.settle)  # every chunk may have been stored before a kill, the final CSV not yet
        for s in segments:
            tasks.append(DecodeTask(v.path, s, tuple(out.roi for out in live), size, cfg.stride, cfg.batch,
                                    segment_index(v.index, s, cfg.stride), tuple(out.number for out in live)))
            cost[s] = ((s.stop_row or v.rows.rows) - s.first_row) * cfg.stride + lead_in(s.first_row)
    # most frames to decode first (LPT): the short segments (a video's tail, short videos) fill in while the last
    # long ones end
    return sorted(tasks, key=lambda t: -cost[t.segment])


def _read_for_plan(groups: list[list[JobVideo]], statuses: list, cfg: JobConfig, workers: int) -> list[dict]:
    """What planning reads of each video (_survey.read_for_plan): as an output of it kept it (_kept_reads) while
    the file's status is the same (`statuses`, file_status taken before), else read by `workers` processes (an
    unlabelled video indexed as it is probed), each with its status."""
    probes = [next((k for v in g if (k := v.store.kept_probe(status)) is not None), None)
              for g, status in zip(groups, statuses, strict=True)]
    unread = [i for i, probed in enumerate(probes) if probed is None]
    items = [(groups[i][0].path, all(v.store.may_need_index() for v in groups[i])) for i in unread]
    for i, probed in zip(unread, survey(read_for_plan, items, workers, cfg.progress, "reading videos"), strict=True):
        probes[i] = {**probed, "status": statuses[i]}
    return probes


def _left_out(outputs: list[JobVideo], why: str | None) -> bool:
    """Leave a video's `outputs` out of the run when there is a reason `why`; whether they were."""
    if why is None:
        return False
    for v in outputs:
        v.leave_out(why)
    return True


def _each(outputs: list[JobVideo], step: Callable[[JobVideo], None]) -> None:
    """step(v) for each output; a FoldedCNNError is that output's error."""
    for v in outputs:
        try:
            step(v)
        except FoldedCNNError as exc:
            v.result.error = str(exc)


def lead_in_frames(index: VideoIndex, stride: int, row: int) -> int:
    """Frames a decoder starting at output `row` decodes before it: from the keyframe before it (from frame 0
    when the video cannot be sought)."""
    frame = row * stride
    return frame - (index.keyframe_at_or_before(frame) if index.seekable else 0)
