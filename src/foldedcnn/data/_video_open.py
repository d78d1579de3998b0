"""Opening a video file: with clear errors, with FFmpeg's threads, or ready to decode from a keyframe (a bare stream
read from the keyframe's byte offset)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ._bare_streams import holds_timestamps
from ._video_errors import VideoError
from ._video_index import VideoIndex
from ._video_seek import seek_keyframe


def open_video(path: str | Path):
    """`path` opened with PyAV (a container to close, or use in a with block); VideoError naming the file and the
    problem when it is missing, not a file, empty, not a video or has no video stream."""
    import av

    path = Path(path)
    if not path.exists():
        raise VideoError(f"video file not found: {path}")
    if not path.is_file():
        raise VideoError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is empty (0 bytes)")
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise VideoError(f"cannot read {path} as a video ({exc})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path} has no video stream")
    return container


@contextmanager
def open_threaded(path: Path) -> Iterator[Any]:
    """open_video(path) with its video stream on FFmpeg's automatic threads (set before it decodes anything)."""
    with open_video(path) as container:
        container.streams.video[0].thread_type = "AUTO"
        yield container


@contextmanager
def opened(path: Path, index: VideoIndex | None, key: int | None
           ) -> Iterator[tuple[Any, dict[int, int] | None, int | None]]:
    """`path` opened (open_video); given `key`, a keyframe of `index` (one with offsets), ready to decode from it: a
    bare stream read from its offset (_open_at), an AVI sought to it by its counter. With that, counted's `idrs` (the
    byte position, as the container reads it, of each IDR picture's packet from there on, and its frame number)
    and the position its first packet must have (None for a bare stream, read from exactly there)."""
    with open_video(path) as container:
        if key is None:
            yield container, None, None
            return
        at = int(np.searchsorted(index.keyframes, key))
        offsets, numbers = index.offsets[at:].tolist(), index.keyframes[at:].tolist()
        stream = container.streams.video[0]
        if holds_timestamps(container):  # an AVI's
            seek_keyframe(container, stream, int(index.pts[key - index.start]))
            yield container, dict(zip(offsets, numbers, strict=True)), offsets[0]
            return
        headers, fmt = bytes(stream.codec_context.extradata or b""), container.format.name
        size = stream.codec_context.width, stream.codec_context.height
    with _open_at(path, offsets[0], headers, fmt) as container:
        context = container.streams.video[0].codec_context
        if not context.width:  # not found read from there (a bare AV1 stream): the frame size the file's start gives
            context.width, context.height = size
        base = offsets[0] - len(headers)  # the file position of what the container reads as position 0
        yield container, {o - base: k for o, k in zip(offsets, numbers, strict=True)}, None


class _FromOffset(io.RawIOBase):
    """A bare stream's file read from byte `offset` on, after `headers` (its parameter sets: a decoder starting at
    a keyframe needs them, and a camera may send them only once, at the start)."""

    def __init__(self, path: Path, offset: int, headers: bytes) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed with this reader
        self._file.seek(offset)
        self._headers = memoryview(headers)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._headers:
            n = min(len(buffer), len(self._headers))
            buffer[:n] = self._headers[:n]
            self._headers = self._headers[n:]
            return n
        return self._file.readinto(buffer)

    def close(self) -> None:
        self._file.close()
        super().close()


@contextmanager
def _open_at(path: Path, offset: int, headers: bytes, fmt: str) -> Iterator[Any]:
    """The bare stream at `path` (demuxer `fmt`) opened to be read from byte `offset` (a keyframe's:
    VideoIndex.offsets), its parameter sets `headers` (the stream's extradata) read first."""
    import av

    with io.BufferedReader(_FromOffset(path, offset, headers)) as reader:
        try:
            container = av.open(reader, format=fmt)
        except av.FFmpegError as exc:
            raise VideoError(f"cannot read {path} from byte {offset} ({exc})") from None
        with container:
            yield container
