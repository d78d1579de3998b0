"""What planning read of a video (its probe and content fingerprint: _survey) kept beside an output of it,
.parts/KEY/probe.json, with the file's status when it was read (size, modification and change times, inode and
device: os.stat), so that a rerun over a folder of videos labelled before opens and hashes none of them again:
opening a video, FFmpeg decodes its first frames (10 ms for a 320x240 H.264 clip on the 2-core VM, more for a
camera's 1080p one), and the fingerprint reads 2 MiB of it. What is kept is used only while the file's status is
the same, as make, rsync and git take a file to be unchanged; a file modified less than SETTLED_S before it was
read is not kept (a write in the same tick of a coarse file-system clock would leave its status as it was)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..data.video import VideoInfo

PROBE_FILE = "probe.json"
SETTLED_S = 2.0


def file_status(path: Path) -> list[int] | None:
    """[size, mtime_ns, ctime_ns, inode, device] of `path`, or None where it cannot be read."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def kept_probe(parts: Path, status: list[int] | None) -> dict[str, Any] | None:
    """What _survey would read of the video (its "info" and "content") as kept in `parts` for the file whose
    status is `status` (file_status, taken before anything reads the file), with "status" and "kept"; None when
    nothing is kept there, when it was kept for another status, or when it cannot be read."""
    if status is None:
        return None
    try:
        doc = json.loads((parts / PROBE_FILE).read_text())
        if doc["status"] != status:
            return None
        return {"info": VideoInfo(**doc["info"]), "content": str(doc["content"]), "status": status, "kept": True}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def probe_to_keep(probed: dict[str, Any]) -> dict[str, Any] | None:
    """The document to keep (PROBE_FILE) of what _survey read of a video, `probed` with the file's "status" taken
    before the reading; None for a reading that failed, or a file modified less than SETTLED_S before it."""
    status, info, content = probed.get("status"), probed.get("info"), probed.get("content")
    if status is None or not isinstance(info, VideoInfo) or not isinstance(content, str):
        return None
    if time.time() - status[1] / 1e9 < SETTLED_S:
        return None
    return {"status": status, "info": asdict(info), "content": content}
