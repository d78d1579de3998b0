"""Crash-safe per-video output: rows are written in fixed-size chunks, each chunk atomically.

Layout under the output folder, for a video whose key is KEY:
  KEY.csv                 the final CSV; with a matching fingerprint, its presence means the video is done
  .parts/KEY/config.json  the job's fingerprint (video, checkpoint hash, region, stride, thresholds,
                          decoder, ...): what produced the chunks and the final CSV; kept after the merge
  .parts/KEY/00000042.csv chunk 42: the rows of output frames [42*C, 43*C)
After a kill at any moment, the completed chunks are exactly the files named like a chunk;
a rerun resumes at the first missing chunk, and the final CSV is the concatenation. A rerun
with another fingerprint is refused (its rows would be mixed with, or mistaken for, the old
ones) unless `overwrite` is set, which discards the old output of that video. A write that
fails (disk full, read-only) raises OutputWriteError and leaves every finished chunk in place.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from ..errors import FoldedCNNError
from ..fsio import atomic_write_text
from ..fsio import writing as fsio_writing


def writing(path: Path) -> AbstractContextManager[None]:
    """fsio.writing, saying that a rerun resumes."""
    return fsio_writing(path, "rerun the same command: it resumes after the last finished chunk")


def csv_lines(rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV text; a value with a comma or quote (a class name, say) is quoted."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, header: Sequence[object], body: str) -> Path:
    """Publish `header` then `body` (CSV lines already formatted) at `path` atomically."""
    with writing(path):
        atomic_write_text(path, csv_lines([header]) + body)
    return path


class ChunkStore:
    """Chunks of one video's output rows under `out_dir`; `chunk_rows` rows per chunk."""

    def __init__(self, out_dir: Path, key: str, header: Sequence[str], chunk_rows: int, config: dict) -> None:
        if chunk_rows < 1:
            raise FoldedCNNError(f"chunk size must be >= 1 row, got {chunk_rows}")
        self.final_path = out_dir / f"{key}.csv"
        self.parts = out_dir / ".parts" / key
        self.header = list(header)
        self.chunk_rows = chunk_rows
        self.config = {**config, "header": self.header, "chunk_rows": chunk_rows}

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

    def open(self, overwrite: bool = False) -> int:
        """Check (or with `overwrite`, reset) the stored fingerprint and prepare for writing; return the number of
        output rows already stored (a chunk multiple; meaningless once `done`)."""
        old = self._stored_config()
        if old is None and self.done:
            if not overwrite:
                raise FoldedCNNError(f"{self.final_path} exists but records no job fingerprint (an older foldedcnn, "
                                     "or another program, wrote it); rerun with --overwrite to replace it, or choose "
                                     "another --out")
            self._discard()
        elif old is not None and old != self.config:
            if not overwrite:
                changed = sorted(k for k in self.config.keys() | old.keys() if old.get(k) != self.config.get(k))
                raise FoldedCNNError(
                    f"{self.final_path.parent} holds output of {self.final_path.stem} made with other settings "
                    f"({', '.join(changed)}); rerun with the same settings, with --overwrite to start this video "
                    "afresh, or choose another --out")
            self._discard()
            old = None
        if old is None:
            with writing(self.parts):
                self.parts.mkdir(parents=True, exist_ok=True)
                atomic_write_text(self.parts / "config.json", json.dumps(self.config, indent=2, sort_keys=True))
        complete = 0
        while self._chunk_path(complete).exists():
            complete += 1
        return complete * self.chunk_rows

    def write_chunk(self, first_row: int, rows: Sequence[Sequence[object]]) -> None:
        """Store rows [first_row, first_row + len(rows)); first_row must start a chunk."""
        if first_row % self.chunk_rows or len(rows) > self.chunk_rows:
            raise ValueError(f"rows {first_row}+{len(rows)} do not form chunk of {self.chunk_rows}")
        path = self._chunk_path(first_row // self.chunk_rows)
        with writing(path):
            atomic_write_text(path, csv_lines(rows))

    def finish(self) -> Path:
        """Concatenate the chunks into the final CSV (atomically) and remove them; the fingerprint stays."""
        parts = sorted(p for p in self.parts.glob("[0-9]*.csv"))
        write_csv(self.final_path, self.header, "".join(p.read_text() for p in parts))
        for p in parts:
            p.unlink(missing_ok=True)
        return self.final_path
