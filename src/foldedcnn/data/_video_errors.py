"""The errors of reading videos: VideoError for what a user can cause, SeekError for a seek that misleads."""

from __future__ import annotations

from ..errors import FoldedCNNError


class VideoError(FoldedCNNError):
    """A video that cannot be read, or a region that does not fit its frames."""


class SeekError(VideoError):
    """Frames found after a seek do not match the demuxed index; decoding from the start still works."""
