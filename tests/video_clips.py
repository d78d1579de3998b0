"""Short videos written with PyAV for tests: a bright square moving over a dark background."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def square_x(i: int, width: int) -> int:
    """Left edge of the square in frame i: sweeps right across the frame and wraps."""
    return (i * 3) % width


def write_square_clip(path: Path, frames: int, width: int = 96, height: int = 64, fps: int = 25, codec: str = "mpeg4",
                      container: str | None = None, options: dict[str, str] | None = None,
                      container_options: dict[str, str] | None = None) -> Path:
    """A clip of `frames` frames with a 16x16 white square moving right (MPEG-4 in the container of the suffix);
    `container_options` for the muxer (e.g. {"movflags": "faststart"}: an MP4's index before its frames)."""
    with av.open(str(path), "w", format=container, options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options or {}
        for i in range(frames):
            img = np.full((height, width, 3), 20, np.uint8)
            x = square_x(i, width)
            img[24:40, x:x + 16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_turned_clip(path: Path, frames: int, degrees: int | None, hflip: bool = False, vflip: bool = False,
                      options: dict[str, str] | None = None) -> Path:
    """The moving square (96x64 stored, MPEG-4 in MP4) with a grey block in the top-left corner, so that no turn or
    mirror leaves a frame alike, and a display matrix (as a phone writes one) shown `degrees` counterclockwise, then
    mirrored (PyAV's set_display_rotation); None: no matrix, the same frames and bitstream."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = options or {}
        if degrees is not None:
            stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        for i in range(frames):
            img = np.full((64, 96, 3), 20, np.uint8)
            img[2:14, 2:30] = 128
            img[24:40, square_x(i, 96):square_x(i, 96) + 16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_raw_stream_clip(path: Path, frames: int) -> Path:
    """The moving square as a raw H.264 elementary stream (.h264, as cameras dump them) at 25 frames/s: its frames
    carry no timestamps, and it has B-frames."""
    return write_square_clip(path, frames, codec="libx264", container="h264",
                             options={"g": "25", "bf": "2", "preset": "ultrafast"})


def write_empty_clip(path: Path, width: int = 96, height: int = 64) -> Path:
    """A valid container whose video stream has no frames."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    return path


def write_size_switch_clip(path: Path, frames: int, sizes: tuple[tuple[int, int], ...] = ((96, 64), (48, 32))) -> Path:
    """An MPEG-TS stream of `frames` frames per size (w, h), one after the other: a recording whose resolution
    switches midway, as concatenated live-stream segments are."""
    parts = []
    for k, (width, height) in enumerate(sizes):
        part = path.with_name(f"{path.stem}.part{k}.ts")
        with av.open(str(part), "w", format="mpegts") as out:
            stream = out.add_stream("mpeg2video", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for i in range(frames):
                img = np.full((height, width, 3), 20, np.uint8)
                img[: height // 2, : width // 2] = 40 * k + i
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        parts.append(part.read_bytes())
        part.unlink()
    path.write_bytes(b"".join(parts))
    return path


def damage_packets(path: Path, packets: list[int], fill: int = 0) -> Path:
    """Overwrite the last three quarters of the data of `path`'s video packets number `packets` (in file order) with
    byte `fill`, as a bad sector or a lost chunk of a network stream damages a recording: the container and its
    index are intact, those frames' data is not."""
    with av.open(str(path)) as c:
        places = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    for k in packets:
        pos, size = places[k]
        data[pos + size // 4:pos + size] = bytes([fill]) * (size - size // 4)
    path.write_bytes(bytes(data))
    return path


def damage_avi_chunk_headers(path: Path, packets: list[int]) -> Path:
    """Zero the 8-byte chunk headers (fourcc and size) of the AVI at `path` before its video packets number `packets`
    (in file order): its demuxer passes over those chunks, reading on, while its index (idx1) still lists them."""
    with av.open(str(path)) as c:
        places = [p.pos for p in c.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    for k in packets:
        data[places[k] - 8:places[k]] = bytes(8)
    path.write_bytes(bytes(data))
    return path


def damage_avi_index(path: Path, first: int, count: int) -> Path:
    """Zero `count` 16-byte entries of the AVI at `path`'s index (idx1) from entry `first` on: its chunks are whole,
    its index no longer lists those (its demuxer passes over zero entries)."""
    data = bytearray(path.read_bytes())
    at = data.rfind(b"idx1") + 8
    data[at + 16 * first:at + 16 * (first + count)] = bytes(16 * count)
    path.write_bytes(bytes(data))
    return path


def drop_ts_packets(path: Path, start: float, share: float) -> Path:
    """Remove `share` of the 188-byte packets of the MPEG-TS file at `path` from `start` (a fraction of its packets)
    on, as a network stream loses a stretch of its packets: the demuxer passes over the hole without an error and the
    frames after it come on, the frames in it gone."""
    data = path.read_bytes()
    packets = len(data) // 188
    first = int(packets * start)
    path.write_bytes(data[:first * 188] + data[(first + int(packets * share)) * 188:])
    return path


def trim_start(path: Path, frames: int, fps: int = 25) -> Path:
    """Make the MP4 at `path` (written by write_square_clip with B-frames, so that it has an edit list) show its
    frames from frame `frames` on, as `ffmpeg -ss ... -c copy` cuts a clip: the frames before stay in the file
    (from the keyframe, for the decoder) and its edit list starts after them, so the demuxer marks them to be
    decoded and never shown."""
    import struct

    data = bytearray(path.read_bytes())
    at = data.find(b"elst")
    if at < 0:
        raise ValueError(f"{path} has no edit list to trim")
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        step = round(1 / (fps * stream.time_base))  # a frame in the track's time scale
    version = data[at + 4]
    field, offset = (">q", at + 20) if version else (">i", at + 16)  # the first entry's media_time
    (media_time,) = struct.unpack_from(field, data, offset)
    struct.pack_into(field, data, offset, media_time + frames * step)
    path.write_bytes(bytes(data))
    return path


def wrap_ts_timestamps(path: Path, after_s: float) -> Path:
    """Rewrite the MPEG-TS file at `path` (its packets copied) so that its 33-bit timestamps (90 kHz) wrap around to 0
    `after_s` seconds into it, as a recording of a live stream does once every 26.5 hours of the stream's clock (whose
    start a capture does not choose)."""
    wrapped = path.with_name(f"{path.stem}.wrapped.ts")
    with av.open(str(path)) as src, av.open(str(wrapped), "w", format="mpegts") as out:
        stream = src.streams.video[0]
        copy = out.add_stream_from_template(stream)
        shift = None
        for packet in src.demux(stream):
            if packet.dts is None:
                continue
            if shift is None:
                shift = 2**33 - round(after_s * 90000) - packet.pts
            packet.pts, packet.dts, packet.stream = packet.pts + shift, packet.dts + shift, copy
            out.mux(packet)  # the muxer writes the timestamps' low 33 bits
    wrapped.replace(path)
    return path
