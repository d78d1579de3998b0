"""Crash-safe per-video output: rows are written in fixed-size chunks, each chunk atomically.

Layout under the output folder, for a video whose key is KEY:
  KEY.csv                 the final CSV; its presence means the video is done
  .parts/KEY/config.json  what produced the chunks (a rerun with other settings is refused)
  .parts/KEY/00000042.csv chunk 42: the rows of output frames [42*C, 43*C)
After a kill at any moment, the completed chunks are exactly the files named like a chunk;
a rerun resumes at the first missing chunk, and the final CSV is the concatenation.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import FoldedCNNError
from ..fsio import atomic_write_text


def csv_lines(rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV text; a value with a comma or quote (a class name, say) is quoted."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, header: Sequence[object], body: str) -> Path:
    """Publish `header` then `body` (CSV lines already formatted) at `path` atomically."""
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
        return self.final_path.exists()

    def _chunk_path(self, index: int) -> Path:
        return self.parts / f"{index:08d}.csv"

    def open(self) -> int:
        """Prepare for writing; return the number of output rows already stored (a chunk multiple)."""
        self.parts.mkdir(parents=True, exist_ok=True)
        cfg_path = self.parts / "config.json"
        if cfg_path.exists():
            old = json.loads(cfg_path.read_text())
            if old != self.config:
                changed = sorted(k for k in self.config.keys() | old.keys() if old.get(k) != self.config.get(k))
                raise FoldedCNNError(
                    f"{self.parts} holds partial output made with other settings ({', '.join(changed)}); "
                    f"rerun with the same settings, or delete {self.parts} to start this video over"
                )
        else:
            atomic_write_text(cfg_path, json.dumps(self.config, indent=2, sort_keys=True))
        complete = 0
        while self._chunk_path(complete).exists():
            complete += 1
        return complete * self.chunk_rows

    def write_chunk(self, first_row: int, rows: Sequence[Sequence[object]]) -> None:
        """Store rows [first_row, first_row + len(rows)); first_row must start a chunk."""
        if first_row % self.chunk_rows or len(rows) > self.chunk_rows:
            raise ValueError(f"rows {first_row}+{len(rows)} do not form chunk of {self.chunk_rows}")
        atomic_write_text(self._chunk_path(first_row // self.chunk_rows), csv_lines(rows))

    def finish(self) -> Path:
        """Concatenate the chunks into the final CSV (atomically) and remove them."""
        parts = sorted(p for p in self.parts.glob("[0-9]*.csv"))
        write_csv(self.final_path, self.header, "".join(p.read_text() for p in parts))
        shutil.rmtree(self.parts, ignore_errors=True)
        return self.final_path
