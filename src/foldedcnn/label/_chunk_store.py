"""Crash-safe per-video output: rows are written in fixed-size chunks, each chunk atomically.

Layout under the output folder, for a video whose key is KEY:
  KEY.csv                 the final CSV; with a matching fingerprint, its presence means the video is done
  .parts/KEY/config.json  the job's fingerprint (video path and content, checkpoint hash, region, stride,
                          thresholds, decoder, ...): what produced the chunks and the final CSV; kept after
                          the merge
  .parts/KEY/00000042.csv chunk 42: the rows of output frames [42*C, 43*C)
  .parts/KEY/index.npz    a long video's keyframe index (data.video.VideoIndex.save), written with the
                          fingerprint: a rerun resumes without demuxing the whole video again, and the
                          report and the frames export seek with it (index_kept_for)
  .parts/KEY/probe.json   the video's probe and content fingerprint, and what the final CSV's rows say,
  .parts/KEY/counts.json  each with the status of the file it was read from (_kept_reads): a rerun reads neither
                          the video nor the CSV again while that file's status is the same
After a kill at any moment, the completed chunks are exactly the files named like a chunk (decoder
processes fill chunks in any order); a rerun redoes the missing chunks, and the final CSV is the
concatenation. `VideoRows` gathers a video's rows batch by batch, in any order, into chunks; the chunk that
completes a video is not stored but goes straight into its final CSV (VideoRows.finish: one file written per
video of a chunk or less, where a camera's clips are many small videos), so a kill before the CSV is written
loses it as it loses the rows of a chunk not yet whole: the rerun redoes it. A rerun
with another fingerprint is refused (its rows would be mixed with, or mistaken for, the old
ones) unless `overwrite` is set, which discards the old output of that video. A write that
fails (disk full, read-only) raises OutputWriteError and leaves every finished chunk in place.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from ..data.video import VideoIndex
from ..errors import FoldedCNNError
from ..fsio import atomic_write_text, file_fingerprint
from ..fsio import writing as fsio_writing
from ._kept_reads import COUNTS_FILE, PROBE_FILE, file_status, keep, kept_probe, probe_to_keep, read_kept


def writing(path: Path) -> AbstractContextManager[None]:
    """fsio.writing, saying that a rerun resumes."""
    return fsio_writing(path, "rerun the same command: it resumes after the last finished chunk")


def csv_lines(rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV text, each ending in a newline; a value with a comma, quote, newline or carriage return (a class
    name, say) is quoted. (csv.writer quotes a field holding a character of its line terminator: written with
    "\r\n", whose ending is then made "\n", it quotes a bare carriage return too, which CSV readers take for the
    end of a line.)"""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    lines = []
    for row in rows:
        writer.writerow(row)
        lines.append(buf.getvalue()[:-2] + "\n")
        buf.seek(0)
        buf.truncate()
    return "".join(lines)


@functools.lru_cache(maxsize=8)
def csv_fields(names: tuple[str, ...]) -> list[str]:
    """Each name as csv_lines writes it as a field: quoted where it quotes (a comma, quote, newline or carriage
    return in it)."""
    return [csv_lines([[name]])[:-1] for name in names]


def write_csv(path: Path, header: Sequence[object], body: Iterable[str]) -> None:
    """Publish `header` then `body` (CSV lines already formatted, in pieces written one at a time) at `path`
    atomically."""
    with writing(path):
        atomic_write_text(path, itertools.chain([csv_lines([header])], body))


# Fingerprint entries added after outputs without them were written: a stored fingerprint lacking one is taken as
# matching it (and then records it), so upgrading foldedcnn does not refuse every earlier output folder.
LATER_KEYS = frozenset({"video_content"})


INDEX_FILE = "index.npz"


def _parts(out_dir: Path, key: str) -> Path:
    """Where output KEY keeps its chunks, fingerprint and index."""
    return out_dir / ".parts" / key


def index_kept_for(video: Path, out_dir: Path, keys: Iterable[str]) -> VideoIndex | None:
    """The keyframe index a `foldedcnn run` into `out_dir` kept for `video` (a video of 50,000 frames or more keeps
    it beside the chunks of one of its outputs, `keys`: ChunkStore.keep_index), while `video` is still the file the
    run labelled (its content fingerprint); else None. The report and the frames export seek with it instead of
    demuxing the video again (seconds for a day-long recording)."""
    content = None
    for key in keys:
        parts = _parts(out_dir, key)
        if not (parts / INDEX_FILE).is_file():
            continue
        try:
            content = content or file_fingerprint(video)
            if json.loads((parts / "config.json").read_text()).get("video_content") == content:
                return VideoIndex.load(parts / INDEX_FILE)
        except (OSError, ValueError, FoldedCNNError):  # no video there, a damaged fingerprint or index: demux it
            continue
    return None


class ChunkStore:
    """Chunks of one video's output rows under `out_dir`; `chunk_rows` rows per chunk."""

    def __init__(self, out_dir: Path, key: str, header: Sequence[str], chunk_rows: int, config: dict) -> None:
        if chunk_rows < 1:
            raise FoldedCNNError(f"chunk size must be >= 1 row, got {chunk_rows}")
        self.final_path = out_dir / f"{key}.csv"
        self.parts = _parts(out_dir, key)
        self.header = list(header)
        self.chunk_rows = chunk_rows
        self.config = {**config, "header": self.header, "chunk_rows": chunk_rows}
        self._unrecorded = False  # open() found no fingerprint of this job: record it before writing output
        self._index_to_keep: VideoIndex | None = None
        self._probe_to_keep: dict | None = None

    @property
    def done(self) -> bool:
        """Whether the final CSV exists (call `open` first: it checks that the CSV is this job's)."""
        return self.final_path.exists()

    def _chunk_path(self, index: int) -> Path:
        return self.parts / f"{index:08d}.csv"

    def _stored_config(self) -> dict | None:
        path = self.parts / "config.json"
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {"damaged": path.name}

    def _discard(self) -> None:
        with writing(self.final_path):
            self.final_path.unlink(missing_ok=True)
            shutil.rmtree(self.parts, ignore_errors=True)

    def open(self, overwrite: bool = False) -> set[int]:
        """Check (or with `overwrite`, reset) the stored fingerprint and prepare for writing; return the indices
        of the chunks already stored (meaningless once `done`)."""
        old = self._stored_config()
        if old is not None and (missing := (LATER_KEYS & self.config.keys()) - old.keys()):
            upgraded = {**old, **{k: self.config[k] for k in missing}}
            if upgraded == self.config:  # written before those entries existed, the same otherwise: this job's
                old = upgraded
                self._record(old)
        if old is None and self.done:
            if not overwrite:
                raise FoldedCNNError(f"{self.final_path} exists but records no job fingerprint (an older foldedcnn, "
                                     "or another program, wrote it); rerun with --overwrite to replace it, or choose "
                                     "another --out")
            self._discard()
        elif old is not None and old != self.config:
            if not overwrite:
                changed = sorted(k for k in self.config.keys() | old.keys() if old.get(k) != self.config.get(k))
                what = ("the video file is not the one labelled there (another recording at the same path, or one "
                        "still being written: label a recording once it is closed; --min-age leaves out files modified "
                        "lately)"
                        if changed == ["video_content"] else f"other settings ({', '.join(changed)})")
                raise FoldedCNNError(
                    f"{self.final_path.parent} holds output of {self.final_path.stem} made with {what}; rerun with "
                    "the same settings, with --overwrite to start this video afresh, or choose another --out")
            self._discard()
            old = None
        self._unrecorded = old is None  # recorded with the first chunk: planning 100,000 videos writes nothing
        return {int(p.stem) for p in self.parts.glob("[0-9]*.csv")}

    def recorded(self, key: str) -> object:
        """What the fingerprint an earlier run recorded says under `key` (None: nothing recorded)."""
        old = self._stored_config()
        return None if old is None else old.get(key)

    def may_need_index(self) -> bool:
        """A guess before `open`, from two file checks: no final CSV and no kept index, so planning reads the
        video's keyframe index along with its probe (the fingerprint check in `open` decides)."""
        return not self.final_path.exists() and not self._index_path.exists()

    @property
    def _index_path(self) -> Path:
        return self.parts / INDEX_FILE

    def kept_index(self) -> VideoIndex | None:
        """The video's keyframe index an earlier run of this job kept (keep_index), or None. Call after `open`: its
        fingerprint (the video's size and content among it) matched, so the index is of this very file; one that
        cannot be read is removed and None returned (the video is indexed again, and that index kept)."""
        if self._unrecorded or not self._index_path.is_file():
            return None
        try:
            return VideoIndex.load(self._index_path)
        except FoldedCNNError:
            with writing(self._index_path):
                self._index_path.unlink()
            return None

    def keep_index(self, index: VideoIndex) -> None:
        """Keep `index` for a rerun (kept_index), written with the next output unless one is kept already."""
        self._index_to_keep = index

    def kept_probe(self, status: list[int] | None) -> dict | None:
        """What planning read of the video, as kept beside this output for a file of status `status`
        (_kept_reads.kept_probe); None if nothing is kept for it."""
        return kept_probe(self.parts, status)

    def keep_probe(self, probed: dict) -> None:
        """After `open`: keep what _survey read of the video (`probed`, with the file's "status": _kept_reads) beside
        this output for a rerun; now where the job's fingerprint is recorded already (a finished video read
        again), else with it."""
        kept = probe_to_keep(probed)
        self._probe_to_keep = None if kept is None else (probed["status"], kept)
        if not self._unrecorded:
            self._write_probe()

    def _write_probe(self) -> None:
        if self._probe_to_keep is not None:
            keep(self.parts / PROBE_FILE, *self._probe_to_keep)
            self._probe_to_keep = None

    def kept_counts(self, basis: list) -> dict | None:
        """What keep_counts kept of the final CSV for `basis`, while the CSV is the file it was counted from; else
        None."""
        kept = read_kept(self.parts / COUNTS_FILE, file_status(self.final_path))
        return kept["counts"] if isinstance(kept, dict) and kept.get("basis") == basis else None

    def keep_counts(self, basis: list, counts: dict) -> None:
        """Keep `counts` (JSON) of the final CSV as it is now, made with `basis` (what else they depend on), for a
        rerun (_kept_reads)."""
        keep(self.parts / COUNTS_FILE, file_status(self.final_path), {"basis": basis, "counts": counts})

    def _record_before_output(self) -> None:
        """Record the fingerprint if this job has not yet: before the first chunk or final CSV it vouches for;
        then the probe and the index to keep, once."""
        if self._unrecorded:
            self._record(self.config)
            self._unrecorded = False
        self._write_probe()
        if self._index_to_keep is not None:
            if not self._index_path.exists():
                with writing(self._index_path):
                    self._index_to_keep.save(self._index_path)
            self._index_to_keep = None

    def _record(self, config: dict) -> None:
        with writing(self.parts):
            self.parts.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.parts / "config.json", json.dumps(config, indent=2, sort_keys=True))

    def write_chunk(self, first_row: int, lines: Sequence[str]) -> None:
        """Store rows [first_row, first_row + len(lines)), CSV lines each ending in a newline; first_row must start
        a chunk."""
        if first_row % self.chunk_rows or len(lines) > self.chunk_rows:
            raise ValueError(f"rows {first_row}+{len(lines)} do not form chunk of {self.chunk_rows}")
        path = self._chunk_path(first_row // self.chunk_rows)
        self._record_before_output()
        with writing(path):
            atomic_write_text(path, "".join(lines))

    def finish(self, chunks: int, held: dict[int, list[str]] | None = None,
               seen: Callable[[str], None] = lambda rows: None) -> None:
        """Concatenate chunks [0, chunks) into the final CSV (atomically, one chunk in memory at a time: a day-long
        video's CSV may hold gigabytes) and remove them; the fingerprint stays. `held`: chunks given as their lines
        instead of stored. `seen(rows)` gets each chunk's rows (CSV text, no header) in order as they are written:
        what summary.json counts, without reading the CSV back."""
        held = held or {}
        parts = {i: self._chunk_path(i) for i in range(chunks) if i not in held}
        if missing := [i for i, p in parts.items() if not p.exists()]:
            raise FoldedCNNError(f"{self.parts}: chunks {missing} are missing; rerun the same command to redo them")
        self._record_before_output()

        def rows() -> Iterator[str]:
            for i in range(chunks):
                text = "".join(held[i]) if i in held else parts[i].read_text()
                seen(text)
                yield text

        write_csv(self.final_path, self.header, rows())
        for p in parts.values():
            p.unlink(missing_ok=True)


class VideoRows:
    """One video's output rows (CSV lines) arriving batch by batch in any order; each chunk is stored once it is
    whole.

    `rows` is the row count the plan expects (the demuxed frame count / stride); a decoder that reaches
    the end of the video reports where it ended (`ended_at`), which fixes the count. The video is
    `complete` when every chunk below that count is stored.
    """

    def __init__(self, store: ChunkStore, done: set[int], rows: int) -> None:
        self.store, self.done, self.rows = store, set(done), rows
        self._pending: dict[int, dict[int, list[str]]] = {}  # chunk -> first row of a batch -> its lines
        self._held: dict[int, list[str]] = {}  # the chunk that completed the video: for finish(), not stored
        self._ended = False

    def add(self, first_row: int, lines: Sequence[str]) -> None:
        """Rows [first_row, first_row + len(lines)) of one batch, CSV lines (a batch never spans two chunks)."""
        chunk = first_row // self.store.chunk_rows
        if chunk not in self.done:
            self._pending.setdefault(chunk, {})[first_row] = list(lines)
            self._store_if_whole(chunk)

    def ended_at(self, row: int) -> None:
        """A decoder reached the end of the video after output row `row` - 1."""
        self.rows, self._ended = (row, True) if not self._ended else (min(self.rows, row), True)
        for chunk in list(self._pending):
            self._store_if_whole(chunk)

    def _expected(self, chunk: int) -> int:
        return max(0, min(self.store.chunk_rows, self.rows - chunk * self.store.chunk_rows))

    def _store_if_whole(self, chunk: int) -> None:
        batches = self._pending[chunk]
        got = sum(len(r) for r in batches.values())
        if got and got == self._expected(chunk):
            lines = [r for k in sorted(batches) for r in batches[k]]
            del self._pending[chunk]
            self.done.add(chunk)
            if self.complete and not self._held:
                self._held[chunk] = lines
            else:
                self.store.write_chunk(chunk * self.store.chunk_rows, lines)

    def finish(self, seen: Callable[[str], None] = lambda rows: None) -> None:
        """Write the final CSV of a complete video (ChunkStore.finish, with the held chunk; `seen` gets each chunk's
        rows)."""
        self.store.finish(self.chunks, self._held, seen)
        self._held.clear()

    def store_held(self) -> None:
        """Store the held chunk as a chunk after all (the job stops before the video's CSV: a rerun keeps it)."""
        for chunk, lines in self._held.items():
            self.store.write_chunk(chunk * self.store.chunk_rows, lines)
        self._held.clear()

    @property
    def chunks(self) -> int:
        return -(-self.rows // self.store.chunk_rows)

    @property
    def stray(self) -> bool:
        """Rows arrived past the end the decoders reported (frames missing in between)."""
        return any(chunk >= self.chunks for chunk in (*self._pending, *self._held))

    @property
    def complete(self) -> bool:
        """Every chunk below the row count stored (or held). Asked after every batch and every chunk: fewer chunks
        done than the count answers at once, so a long video's thousands of chunks are not walked each time."""
        chunks = self.chunks
        return len(self.done) >= chunks and all(c in self.done for c in range(chunks))
