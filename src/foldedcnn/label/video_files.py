"""Which files `foldedcnn run` labels: the videos it is given, and those in the folders it is given."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import FoldedCNNError
from ..fsio import files_under
from ._kept_reads import modified_at

# What a folder's files must end with to be labelled (case-insensitive): containers and raw streams FFmpeg reads
VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".mpg", ".mpeg",
    ".3gp", ".ogv", ".mxf", ".nut", ".y4m", ".h264", ".264", ".h265", ".265", ".hevc", ".mjpeg", ".mjpg", ".m2v",
    ".obu", ".ivf",
})


def expand_videos(paths: Sequence[Path]) -> list[Path]:
    """The videos to label, in order: each path that is not a folder as given (a missing or broken file is the
    job's to report), and for each folder the files under it, at any depth, whose suffix is in VIDEO_SUFFIXES,
    sorted by path; hidden ones (a name, or a folder on the way, starting with ".": macOS's "._clip.mp4"
    companions on a camera's drive) are left out. A folder with none raises FoldedCNNError naming the suffixes."""
    videos: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            videos.append(path)
            continue
        found = files_under(path, VIDEO_SUFFIXES)
        if not found:
            raise FoldedCNNError(f"no video under {path} (files ending in {' '.join(sorted(VIDEO_SUFFIXES))}); "
                                 "name other files one by one")
        videos += found
    return videos


def modified_within(status: list[int] | None, min_age: float, now: float) -> str | None:
    """Why a run that takes only videos left untouched for `min_age` seconds at `now` (time.time()) leaves out the
    video whose file has `status` (_kept_reads.file_status): it was modified less long ago (a camera's recording
    still being written: its end is not there yet, and a later run would find another file at its path). None to
    label it, also when its file cannot be read (status None: the job records that)."""
    if status is None or (age := now - modified_at(status)) >= min_age:
        return None
    when = f"{age:.0f} s ago" if age >= 0 else f"{-age:.0f} s in the future (this machine's clock disagrees)"
    return f"modified {when}, within --min-age {min_age:g} s: still being written? a later run labels it"


def check_each_once(videos: Sequence[Path]) -> None:
    """Raise FoldedCNNError when a video file is given twice (also by two paths to it, e.g. a folder and a file
    in it): a video's CSV is written once."""
    seen: dict[Path, Path] = {}
    for video in map(Path, videos):
        first = seen.setdefault(video.resolve(), video)
        if first is not video:
            also = "" if first == video else f" (as {first} and {video})"
            raise FoldedCNNError(f"{video} is given twice{also}: each video is labelled once, drop the repeat")
