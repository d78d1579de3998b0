"""The vtest recipe: "person in region" on OpenCV's vtest.avi (768x576, 795 frames at 10 fps, pedestrians).

Region VTEST_ROI = (480, 260, 140, 140) is a patch of the road right of the sign pole, away from
the fluttering tape (which MOG2 would flag): people cross it often and it is empty often, so
both classes are well represented in each contiguous split (about 48/56/56 % positive in
train/val/test with threshold 0.02). Crops are resized to 50x50 as in NoScope.
"""

from __future__ import annotations

from pathlib import Path

from ..device import cache_dir
from .noscope import VideoTask, build_video_task, save_video_task
from .types import DataError

VTEST_ROI = (480, 260, 140, 140)
VTEST_SIZE = (50, 50)
VTEST_THRESHOLD = 0.02
_DEBIAN_PATH = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def vtest_path() -> Path:
    """Path of vtest.avi: $FOLDEDCNN_CACHE/vtest.avi (default ~/.cache/foldedcnn), else the opencv-doc copy."""
    for path in (cache_dir() / "vtest.avi", _DEBIAN_PATH):
        if path.is_file():
            return path
    raise DataError(f"vtest.avi not found in {cache_dir()} or {_DEBIAN_PATH.parent}; run `make system-deps` "
                    "(scripts/install_system_deps.sh extracts it from Debian opencv-doc)")


def vtest_task(stride: int = 1) -> VideoTask:
    """vtest.avi labelled by the MOG2 oracle on VTEST_ROI (not saved)."""
    task = build_video_task(vtest_path(), VTEST_ROI, size=VTEST_SIZE, threshold=VTEST_THRESHOLD, stride=stride)
    task.meta["recipe"] = "vtest"
    return task


def prepare_vtest(out_dir: str | Path | None = None) -> Path:
    """Label vtest.avi with the MOG2 oracle on VTEST_ROI and save it (default $FOLDEDCNN_CACHE/vtest-task)."""
    out_dir = Path(out_dir) if out_dir is not None else cache_dir() / "vtest-task"
    return save_video_task(vtest_task(), out_dir)
