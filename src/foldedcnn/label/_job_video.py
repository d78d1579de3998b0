"""One output of a `foldedcnn run` job (a video, or one region of it): its chunk store, the rows it still needs,
the segments still decoding for it, its timings, and its line of summary.json (VideoResult)."""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..data.video import VideoError, VideoInfo, check_roi, check_shown_roi, shown_orientation
from ..errors import FoldedCNNError, OutputWriteError
from ._chunk_store import ChunkStore, VideoRows, csv_fields
from ._frame_labels import header
from ._nvdec import DECODER_PROGRAM
from ._row_times import RowTimes
from ._survey import Unreadable

if TYPE_CHECKING:
    from .job import JobConfig

T = TypeVar("T")

# The fingerprint's entry of a video NVDEC failed on and the CPU decoded (JobVideo.fall_back_to_cpu)
NVDEC_FAILED = "nvdec_failed"

# Rows a RowTally splits at a time
_TALLY_BLOCK = 4096

# What JobVideo.count sets from a finished CSV's rows, kept for a rerun (_kept_reads)
_COUNTED = ("frames", "positives", "uncertain", "labels", "undecodable", "missing_frames", "gaps_s", "truncated",
            "error")


@dataclass
class VideoResult:
    """One video's outcome, as written to summary.json."""

    video: str
    region: int | None = None  # with several regions: which --roi (from 1) this result is of
    roi: list[int] | None = None  # the region (x, y, w, h) its frames were cropped from
    csv: str | None = None
    frames: int = 0  # rows of its CSV: the frames labelled and those that did not decode
    positives: int = 0
    uncertain: int = 0
    labels: dict[str, int] = field(default_factory=dict)  # frames per label (an uncertain frame's provisional one)
    undecodable: int = 0  # frames whose packets are damaged: rows with their frame and time, no label
    expected_frames: int | None = None  # what the container declares (after --stride), when it says
    expected_seconds: float | None = None  # the video's length the container declares where it gives no frame count
    truncated: bool = False  # fewer frames decoded than the container declares, or they stop before its length
    # frames whose time the rows' times pass over: the file does not hold them (a damaged part its demuxer passed
    # over without an error, or frames dropped when it was recorded); None where that cannot be told (no CSV, no
    # frame rate, uneven times). gaps_s: [time of the row before, of the row after] of the first 100 such jumps
    missing_frames: int | None = None
    gaps_s: list[list[float]] = field(default_factory=list)
    resumed_at_frame: int = 0
    decoder: str | None = None  # cpu or gpu
    note: str | None = None  # why a video did not go to the decoder asked for, or other notes (add_note)
    decode_fps: float | None = None
    model_fps: float | None = None
    end_to_end_fps: float | None = None
    error: str | None = None
    skipped: str | None = None  # why this run left the video out (JobVideo.leave_out), to be labelled by a later run

    def add_note(self, note: str | None) -> None:
        """Add `note` (when there is one) after the notes already made, "; " between them."""
        if note:
            self.note = f"{self.note}; {note}" if self.note else note


class RowTally:
    """Counts of a video's CSV rows, given a chunk at a time (`add_rows`) or read back (`add_file`): frames,
    positives (any label but the first class), uncertain, frames per label, and frames that did not decode (an
    empty label, which no class name is: _frame_labels.undecodable_line); with `times`, the rows' times go to it
    (frames the file does not hold). Never all rows at once (a day-long recording's CSV may hold gigabytes): blocks
    of _TALLY_BLOCK. Only the time and the last two fields of each line are split off, unless a class name is
    quoted (has a comma): parsing all of a 111-class model's fields took longer than formatting them."""

    def __init__(self, class_names: Sequence[str], times: RowTimes | None = None) -> None:
        self.class_names = list(class_names)
        self.quoted = csv_fields(tuple(class_names)) != self.class_names
        self.labels: Counter[str] = Counter()
        self.uncertain = 0
        self.times = times

    def add_rows(self, rows: str) -> None:
        """Count `rows`, CSV text of whole lines (no header): a chunk of them."""
        self._add(io.StringIO(rows, newline="") if self.quoted else rows.split("\n")[:-1])

    def add_file(self, path: Path) -> None:
        """Count the rows of the CSV at `path` past its header, a line at a time (split at newlines only: a class name
        may hold a carriage return, quoted)."""
        with open(path, newline="\n") as f:
            self._add(f, header=True)

    def _add(self, lines: Iterable[str], header: bool = False) -> None:
        # the header skipped as a record: a quoted one may span lines
        records = islice(csv.reader(lines) if self.quoted else lines, int(header), None)
        while block := list(islice(records, _TALLY_BLOCK)):
            tails = [row[-2:] for row in block] if self.quoted else [row.rsplit(",", 2)[1:] for row in block]
            self.labels.update(label for label, _ in tails)
            self.uncertain += sum(flag.startswith("1") for _, flag in tails)
            if self.times is not None:
                times = [row[1] for row in block] if self.quoted else [row.split(",", 2)[1] for row in block]
                self.times.add(np.asarray(times, dtype=np.float64))

    def counts(self) -> tuple[int, int, int, dict[str, int], int]:
        """(frames (rows), positives, uncertain, frames per label (most frequent first), frames that did not
        decode)."""
        labels = self.labels.copy()
        frames, undecodable = labels.total(), labels.pop("", 0)
        return (frames, frames - undecodable - labels[self.class_names[0]], self.uncertain,
                dict(labels.most_common()), undecodable)


class JobVideo:
    """One output of a running job, a video (and, with several regions, one of them): its output chunks, its
    remaining segments and its timings. `region`: the region's number from 1 when the job has several."""

    def __init__(self, number: int, path: Path, key: str, cfg: JobConfig, meta: dict, roi,
                 region: int | None = None) -> None:
        self.number, self.path, self.class_names, self.roi = number, path, meta["class_names"], tuple(roi)
        self.result = VideoResult(video=str(path), region=region, roi=list(roi))
        self.store = ChunkStore(cfg.out_dir, key, header(meta["class_names"]), cfg.chunk_frames, {
            "video": str(path.resolve()), "checkpoint_sha256": meta["sha256"], "roi": list(roi),
            "stride": cfg.stride, "uncertain": list(cfg.uncertain), "batch": cfg.batch,
        })  # plan() adds the decoder: NVDEC's pixels differ slightly from the CPU's
        self.result.csv = str(self.store.final_path)
        # the frame size the checkpoint's region was drawn on, when the job takes the region from it
        self.trained_on = None if cfg.roi else (meta.get("data_source") or {}).get("frame_size")
        self.rows: VideoRows | None = None
        self.index = None
        self.fps = 0.0  # plan() sets the video's frame rate: RowTimes needs it
        self.done: set[int] = set()  # the chunks already stored (plan)
        self.segments_left = 0
        self.frames = 0
        self.decode_s = self.model_s = 0.0
        self.started: float | None = None  # the job's start, set by the job: end-to-end frames/s count from it
        self.nvdec_error: str | None = None  # why NVDEC failed on it (segment_finished): to be redone on the CPU
        self.finished = False

    def leave_out(self, why: str) -> None:
        """Before plan(): this run does not label the video (`why`, e.g. still being written: --min-age); its output
        folder is not touched, and a later run labels it."""
        self.result.skipped = why
        self.finished = True

    def plan(self, cfg: JobConfig, decoder_for: Callable[[VideoInfo], tuple[str, str | None]], probed: dict) -> None:
        """Choose the video's decoder (`decoder_for(info)`: "cpu" or "gpu" and a note), check the output's
        fingerprint and the region, and find the chunks already done (raises FoldedCNNError); a video already
        done is only counted, the others go on to plan_rows(). `probed`: what _survey read of the video once for
        all its regions (probe_and_fingerprint's "info" and "content", or what an earlier run kept of them:
        _kept_reads)."""
        info = _surveyed(probed, "info")
        self.result.expected_frames = None if info.frames is None else -(-info.frames // cfg.stride)
        self.result.expected_seconds = info.seconds
        self.fps = info.fps
        decoder, note = decoder_for(info)
        if decoder == "gpu" and not cfg.overwrite and (failed := self.store.recorded(NVDEC_FAILED)):
            decoder, note = "cpu", None  # an earlier run moved it to the CPU: it goes on there (fall_back_to_cpu)
            self.fall_back_to_cpu(str(failed))
        self.store.config["decoder"] = DECODER_PROGRAM[decoder]
        self.store.config["video_content"] = _surveyed(probed, "content")  # a new recording at the same path
        done = self.store.open(cfg.overwrite)
        if not probed.get("kept"):  # for a rerun: it reads the video again only once the file changes
            self.store.keep_probe(probed)
        if self.store.done:
            self.count()
            self.finished = True
            return
        self.result.decoder = decoder
        self.result.add_note(note)  # none after fall_back_to_cpu, whose note is made already
        self._check_region(info, probed)
        if self.trained_on and list(self.trained_on) not in ([info.width, info.height], [info.height, info.width]):
            w, h = self.trained_on
            moved = (f"the region {self.roi} comes from the checkpoint, whose training video was {w}x{h}; this "
                     f"one is {info.width}x{info.height}: pass --roi where the object sits in it")
            self.result.add_note(moved)
        self.done = done

    def _check_region(self, info: VideoInfo, probed: dict) -> None:
        """check_roi against the frame as shown (raises VideoError). The probe tells the stored size; how a frame is
        shown (a phone's portrait video: turned, data._orientation) takes decoding one. A region that fits one way
        only is checked against the video's first frame here when it is one of several regions (decoded once for
        the video), which must fail alone; one region alone is checked by its decoders, which see the frames."""
        ways = [(info.width, info.height), (info.height, info.width)]
        fits = [_fits(self.roi, w, h) for w, h in ways]
        if not any(fits):
            check_roi(self.roi, info.width, info.height)  # the error, naming the stored size
        if all(fits) or self.result.region is None:
            return
        if "orientation" not in probed:
            probed["orientation"] = shown_orientation(self.path)
        check_shown_roi(self.roi, info.width, info.height, probed["orientation"])

    def plan_rows(self, cfg: JobConfig, probed: dict) -> None:
        """After plan(), for a video not finished: take its keyframe index from `probed` ("index", _survey's) and
        count the rows still to label (raises FoldedCNNError)."""
        self.index = _surveyed(probed, "index")
        self.rows = VideoRows(self.store, self.done, -(-self.index.frames // cfg.stride))
        self.result.resumed_at_frame = len(self.done) * cfg.chunk_frames

    def add(self, first_row: int, lines: list[str]) -> None:
        """CSV lines of one labelled batch starting at output row `first_row` (_frame_labels.csv_lines_for)."""
        self.frames += len(lines)
        self.rows.add(first_row, lines)

    def segment_finished(self, end_row: int, reached_end: bool, error: str | None, decode_s: float) -> None:
        """A decoder finished one of this video's segments (batches of it may still be on their way). NVDEC's error
        is not the video's: it is redone on the CPU (`nvdec_error`; job.redo_on_cpu)."""
        self.decode_s += decode_s
        self.segments_left -= 1
        if error and self.result.decoder == "gpu":
            self.nvdec_error = self.nvdec_error or error
        elif error and self.result.error is None:
            self.result.error = error
        elif reached_end:
            self.rows.ended_at(end_row)

    def fall_back_to_cpu(self, nvdec_error: str) -> None:
        """Before plan(): decode on the CPU, NVDEC having failed on the video (`nvdec_error`), this run or an earlier
        one; its fingerprint records it, so a rerun goes on on the CPU too."""
        self.store.config[NVDEC_FAILED] = nvdec_error
        self.result.note = f"NVDEC failed on it ({nvdec_error}): decoded on the CPU instead"

    def settle(self, last_call: bool = False) -> None:
        """Publish the CSV once every segment has finished and every chunk is stored; on the `last_call`
        (no more rows will come) a video still incomplete is an error. Raises OutputWriteError when the CSV
        cannot be written."""
        if self.nvdec_error and not last_call:
            return  # to be redone on the CPU
        if self.result.error is not None or self.finished or self.segments_left:
            if last_call and self.rows is not None and not self.finished:
                with suppress(OutputWriteError):  # the job stops before this video's CSV: keep its whole chunks
                    self.rows.store_held()  # (unless the disk is full: then the rerun redoes them)
            return
        if not last_call and not self.rows.complete:
            return
        try:
            if not self.rows.complete or self.rows.stray:
                raise FoldedCNNError(f"{self.path}: the decoded frames do not match the container's index "
                                     f"({self.rows.rows} rows expected); rerun with --workers 1")
            tally = self._tally()
            try:
                self.rows.finish(tally.add_rows)
            except FoldedCNNError:  # not published: keep its whole chunks for the rerun (a full disk: it redoes them)
                with suppress(OutputWriteError):
                    self.rows.store_held()
                raise
            now = time.perf_counter()
            if self.frames:
                self.result.decode_fps = round(self.frames / max(self.decode_s, 1e-9), 1)
                self.result.model_fps = round(self.frames / max(self.model_s, 1e-9), 1) if self.model_s else None
                self.result.end_to_end_fps = round(self.frames / max(now - self.started, 1e-9), 1)
            self.count(tally)
        except OutputWriteError:
            raise  # the output's disk: the job stops there (its callers record the error)
        except FoldedCNNError as exc:
            self.result.error = str(exc)
        self.finished = True

    def count(self, tally: RowTally | None = None) -> None:
        """Counts of the finished CSV (`tally`, fed its rows as they were written, or read back line by line unless
        an earlier run kept what they say: _kept_reads) and what its rows' times say of frames missing; an empty one
        is an error, a short one `truncated` (check_complete)."""
        basis = [self.result.expected_frames, self.result.expected_seconds, self.fps]  # what the probe declares
        if tally is None:
            kept = self.store.kept_counts(basis)
            if isinstance(kept, dict) and set(kept) == set(_COUNTED):
                for name, value in kept.items():
                    setattr(self.result, name, value)
                return
            tally = self._tally()
            tally.add_file(self.store.final_path)
        (self.result.frames, self.result.positives, self.result.uncertain, self.result.labels,
         self.result.undecodable) = tally.counts()
        if self.result.frames == self.result.undecodable:
            raise FoldedCNNError(f"{self.path} has no decodable frames")
        check_complete(self.result, tally.times)
        self.store.keep_counts(basis, {name: getattr(self.result, name) for name in _COUNTED})

    def _tally(self) -> RowTally:
        return RowTally(self.class_names, RowTimes(self.fps, self.store.config["stride"]))


def by_video(outputs: Sequence[T]) -> list[list[T]]:
    """Outputs (a job's JobVideos, or anything with its video's `.path`) grouped by video file (its regions), in
    order."""
    groups: dict[Path, list[T]] = {}
    for v in outputs:
        groups.setdefault(v.path, []).append(v)
    return list(groups.values())


def _fits(roi, width: int, height: int) -> bool:
    """Whether check_roi accepts `roi` in a width x height frame."""
    try:
        check_roi(roi, width, height)
    except VideoError:
        return False
    return True


def _surveyed(probed: dict, key: str) -> Any:
    """What _survey read of a video under `key`; an Unreadable raises its error (FoldedCNNError)."""
    if isinstance(probed[key], Unreadable):
        probed[key].raise_()
    return probed[key]


def check_complete(result: VideoResult, times: RowTimes) -> VideoResult:
    """Mark `result` truncated (an error) when fewer frames were labelled than the container declares, or when its
    rows' `times` stop before the length it declares; note the frames the times pass over."""
    result.missing_frames = times.missing_frames
    result.gaps_s = times.gaps if result.missing_frames else []
    if result.expected_frames is not None and result.frames < result.expected_frames:
        result.truncated = True
        result.error = (f"truncated: decoded {result.frames} of the {result.expected_frames} frames its container "
                        "declares (the file is cut short or damaged); the CSV holds the frames that decoded")
    elif result.expected_seconds and result.missing_frames is not None and times.short_of(result.expected_seconds):
        result.truncated = True
        result.error = (f"truncated: its frames stop at {times.last_s:.2f} s of the {result.expected_seconds:.2f} s "
                        "of video its container declares (the file is cut short or damaged); the CSV holds the "
                        "frames that decoded")
    return result
