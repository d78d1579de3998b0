"""What a run read, kept beside an output (.parts/KEY/) for the reruns of its job, each with the status of the file
it was read from (size, modification and change times, inode and device: os.stat), and used only while that file's
status is the same, as make, rsync and git take a file to be unchanged:

  probe.json   the video's probe and content fingerprint (_survey): opening a video, FFmpeg decodes its first frames
               (10 ms for a 320x240 H.264 clip on the 2-core VM, more for a camera's 1080p one), and the fingerprint
               reads 2 MiB of it. Not kept for a video modified less than SETTLED_S before it was read (a write in
               the same tick of a coarse file-system clock would leave its status as it was).
  counts.json  what the finished CSV's rows say (JobVideo.count): its counts, the frames its times pass over, and
               whether it is truncated, for the probe it was counted with; reading a day-long recording's CSV back
               reads gigabytes.

So a rerun over a folder of finished videos (a cron job over a camera's folder) reads none of them, nor their CSVs.
Writing them is best effort: where one cannot be written, the rerun reads the file again.
"""

from __future__ import annotations

import json
import time
from contextlib import suppress
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..data.video import VideoInfo

PROBE_FILE = "probe.json"
COUNTS_FILE = "counts.json"
SETTLED_S = 2.0


def file_status(path: Path) -> list[int] | None:
    """[size, mtime_ns, ctime_ns, inode, device] of `path`, or None where it cannot be read."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def modified_at(status: list[int]) -> float:
    """When the file of `status` (file_status) was last modified, in time.time() seconds."""
    return status[1] / 1e9


def read_kept(doc: Path, status: list[int] | None) -> Any:
    """What `doc` keeps for a file of status `status` (keep), or None: nothing kept, kept for another status, or
    a document that cannot be read."""
    if status is None:
        return None
    try:
        kept = json.loads(doc.read_text())
        return kept["kept"] if kept["status"] == status else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def keep(doc: Path, status: list[int] | None, kept: Any) -> None:
    """Write `kept` (JSON) to `doc` for the file of status `status`; nothing where the status is unknown or the
    document cannot be written."""
    if status is not None:
        with suppress(OSError):
            doc.write_text(json.dumps({"status": status, "kept": kept}))


def kept_probe(parts: Path, status: list[int] | None) -> dict[str, Any] | None:
    """What _survey would read of the video (its "info" and "content") as kept in `parts` for the file whose
    status is `status` (file_status, taken before anything reads the file), with "status" and "kept"; None when
    nothing is kept there for it."""
    kept = read_kept(parts / PROBE_FILE, status)
    try:
        return {"info": VideoInfo(**kept["info"]), "content": str(kept["content"]), "status": status, "kept": True}
    except (KeyError, TypeError):
        return None


def probe_to_keep(probed: dict[str, Any]) -> dict[str, Any] | None:
    """What to keep (keep, in PROBE_FILE, for probed["status"]) of what _survey read of a video, `probed` with the
    file's "status" taken before the reading; None for a reading that failed, or a file modified less than
    SETTLED_S before it."""
    status, info, content = probed.get("status"), probed.get("info"), probed.get("content")
    if status is None or not isinstance(info, VideoInfo) or not isinstance(content, str):
        return None
    if time.time() - modified_at(status) < SETTLED_S:
        return None
    return {"info": asdict(info), "content": content}
