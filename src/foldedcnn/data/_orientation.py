"""How a decoded frame is shown: the display matrix a phone's portrait video (an MP4's or MOV's track matrix) or
an H.264/HEVC display-orientation message carries, which players, FFmpeg's command line and OpenCV apply. Regions,
crops and frames are taken in the frame as shown; the decoded (stored) frame is turned only as far as the region
a model needs (_region), never whole."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# FFmpeg's AV_FRAME_DATA_DISPLAYMATRIX: 9 int32 (a, b, u, c, d, v, x, y, w), a point (p, q) of the decoded frame
# shown at (a p + c q + x, b p + d q + y) (up to scale); a, b, c, d are 16.16 fixed point.
_A, _B, _C, _D = 0, 1, 3, 4


@dataclass(frozen=True)
class Orientation:
    """The shown frame is the stored one transposed (a quarter turn, rows becoming columns) when `transpose`, then
    mirrored left-right (`flip_x`) and upside down (`flip_y`): the 8 turns and mirrors of EXIF orientations."""

    transpose: bool = False
    flip_x: bool = False
    flip_y: bool = False

    @property
    def as_stored(self) -> bool:
        """Whether frames are shown as decoded."""
        return not (self.transpose or self.flip_x or self.flip_y)

    def shown_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the shown frame of a stored width x height one."""
        return (height, width) if self.transpose else (width, height)

    def stored_box(self, roi: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
        """Region (x, y, w, h) of the shown frame -> the region (x, y, w, h) of the stored width x height frame that
        holds its pixels."""
        x, y, w, h = roi
        shown_w, shown_h = self.shown_size(width, height)
        if self.flip_x:
            x = shown_w - x - w
        if self.flip_y:
            y = shown_h - y - h
        return (y, x, h, w) if self.transpose else (x, y, w, h)

    def stored_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """An output size (h, w) of the shown frame -> the size (h, w) to resize the stored region to."""
        return size[::-1] if self.transpose else size

    def on_image(self, image: np.ndarray) -> np.ndarray:
        """Stored pixels (h, w, ...) -> as shown: `image` itself as stored, else a C-contiguous turned copy (what
        OpenCV and PIL take)."""
        if self.as_stored:
            return image
        if self.transpose:
            image = image.swapaxes(0, 1)
        if self.flip_x:
            image = image[:, ::-1]
        return np.ascontiguousarray(image[::-1] if self.flip_y else image)

    def on_tensor(self, images):
        """Stored pixels (..., h, w) of a torch tensor -> as shown (a new tensor unless as stored)."""
        if self.transpose:
            images = images.transpose(-1, -2)
        dims = [d for d, flipped in ((-1, self.flip_x), (-2, self.flip_y)) if flipped]
        return images.flip(dims) if dims else images

    def describe(self) -> str:
        """How it is shown, in words: "rotated 90° clockwise", ..."""
        return _WORDS[(self.transpose, self.flip_x, self.flip_y)]

    def note(self, width: int, height: int) -> str:
        """What a message about a stored width x height frame adds: "" as stored, else e.g. " shown rotated 90°
        clockwise (stored 768x576)"."""
        return "" if self.as_stored else f" shown {self.describe()} (stored {width}x{height})"


_WORDS = {
    (False, False, False): "as stored",
    (False, True, True): "rotated 180°",
    (True, True, False): "rotated 90° clockwise",
    (True, False, True): "rotated 90° counterclockwise",
    (False, True, False): "mirrored left-right",
    (False, False, True): "mirrored upside down",
    (True, False, False): "rotated 90° clockwise and mirrored left-right",
    (True, True, True): "rotated 90° counterclockwise and mirrored left-right",
}

AS_STORED = Orientation()


def orientation_of(frame) -> Orientation:
    """How a decoded PyAV frame is shown, from its display matrix (side data FFmpeg attaches to each frame of a
    stream that has one). A matrix that is no quarter turn or mirror (a camera tilted by another angle) is not
    followed: such frames are taken as stored.

    The side data is read through a container of its own, not `frame.side_data`: PyAV keeps that one on the frame,
    and it refers back to the frame, a cycle that holds the frame's buffers until Python's garbage collector runs.
    A decoder whose buffers are held longer conceals damaged data otherwise (the frames after a damaged keyframe of
    an H.264 stream with B-frames came out with other pixels from a segment starting there than from decoding
    through)."""
    from av.sidedata.sidedata import SideDataContainer, Type

    side = SideDataContainer(frame)
    if not len(side):  # the usual frame: no side data
        return AS_STORED

    matrix = side.get(Type.DISPLAYMATRIX)
    if matrix is None:
        return AS_STORED
    m = np.frombuffer(bytes(matrix), np.int32)
    a, b, c, d = int(m[_A]), int(m[_B]), int(m[_C]), int(m[_D])
    if b == c == 0 and a and d:
        return Orientation(False, a < 0, d < 0)
    if a == d == 0 and b and c:  # shown x from stored y, shown y from stored x
        return Orientation(True, c < 0, b < 0)
    return AS_STORED
