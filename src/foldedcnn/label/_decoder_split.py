"""Which decoder takes each video of a job: DecoderChooser(requested, unavailable, share)(info), once per video.

`--decoder cpu|gpu|auto` choose per video as `_nvdec.choose_decoder` says. `--decoder both` runs NVDEC and the
CPU decoder pool at once, each on whole videos: a video's output is made by one decoder (their pixels differ
slightly, and its fingerprint records which). Among the videos NVDEC can decode, taken in the job's order, each
goes to NVDEC while NVDEC's part of the frames so far is at most `share`, to the CPU pool otherwise (videos NVDEC
cannot decode count on the CPU's side). The same videos in the same order always split the same way, so a
resumed job goes on with each video on the decoder that began it.
"""

from __future__ import annotations

from ..data.video import VideoInfo
from ._nvdec import choose_decoder

#: NVDEC's default part of the frames with --decoder both: its rate over both rates, measured side by side on an
#: H200 with 16 cores, 16 H.264 videos (NVDEC alone 2,254 frames/s, the CPU pool alone 4,389: _nvdec's docstring).
NVDEC_SHARE = 0.34


class DecoderChooser:
    """Callable probed info -> ("gpu" or "cpu", a note or None), asked once per video in the job's order
    (plan_tasks: the regions of a video share its answer)."""

    def __init__(self, requested: str, unavailable: str | None, share: float = NVDEC_SHARE) -> None:
        self.requested, self.unavailable, self.share = requested, unavailable, share
        self.frames = {"gpu": 0, "cpu": 0}  # frames given to each side so far (1 a video whose count is unknown)
        self.videos = {"gpu": 0, "cpu": 0}

    def __call__(self, info: VideoInfo) -> tuple[str, str | None]:
        both = self.requested == "both"
        decoder, note = choose_decoder("gpu" if both else self.requested, info, self.unavailable)
        if both and decoder == "gpu" and self.frames["gpu"] > self.share * sum(self.frames.values()):
            decoder = "cpu"
        self.frames[decoder] += info.frames or 1
        self.videos[decoder] += 1
        return decoder, note

    def note(self) -> str | None:
        """For summary.json: with --decoder auto why NVDEC was not used, with both how the videos were split; None
        otherwise."""
        if self.requested == "auto":
            why = self.unavailable or "the CPU pool is the faster (--decoder gpu: NVDEC; both: the two at once)"
            return f"NVDEC not used: {why}"
        if self.requested != "both":
            return None
        total = sum(self.frames.values())
        part = self.frames["gpu"] / total if total else 0.0
        return (f"NVDEC took {self.videos['gpu']} of {sum(self.videos.values())} videos ({part:.0%} of the frames; "
                f"--nvdec-share {self.share:g}), the CPU decoder processes the rest")
