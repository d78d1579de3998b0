"""Memory the engine reuses: folded input buffers per batch bucket, and the CUDA pipeline's slots.

A folded buffer of G groups is stored either (G, H, W, f, C) (channels-last folded input) or
(G, f, C, H, W) (NCHW). Both expose the same two views: `images` (G, f, C, H, W), where image j
of group i is written, and `folded` (G, f*C, H, W), what the network reads. No copy between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


def bucket_sizes(max_batch: int, fold: int, static: bool, pad_to_max: bool = False) -> list[int]:
    """Batch buckets in images, all multiples of `fold`, the largest `max_batch` (a multiple of fold).

    Dynamic backends get f * 2^k (a buffer is then sliced to the exact group count); static ones
    (CUDA graphs) get a few: f * 4^k, or with `pad_to_max` max_batch alone (one compile in all).
    """
    if static and pad_to_max:
        return [max_batch]
    step = 4 if static else 2
    sizes, b = [], fold
    while b < max_batch:
        sizes.append(b)
        b *= step
    return [*sizes, max_batch]


class FoldedBuffer:
    """Storage for `groups` folded inputs of f images (C, H, W), zero-initialised."""

    def __init__(self, groups: int, fold: int, image_shape: tuple[int, int, int], channels_last: bool,
                 device: torch.device, dtype: torch.dtype) -> None:
        c, h, w = image_shape
        if channels_last:
            storage = torch.zeros(groups, h, w, fold, c, device=device, dtype=dtype)
            self.images = storage.permute(0, 3, 4, 1, 2)
            self.folded = storage.view(groups, h, w, fold * c).permute(0, 3, 1, 2)
        else:
            storage = torch.zeros(groups, fold, c, h, w, device=device, dtype=dtype)
            self.images = storage
            self.folded = storage.view(groups, fold * c, h, w)
        self.groups = groups


class StreamSlots:
    """The CUDA pipeline's memory: `depth` slots of [pinned host images -> device images -> pinned host logits],
    an upload stream, and per slot the events `uploaded` (images on the device) and `done` (logits on the host).

    Slot i holds up to `capacity` images of one dtype and per-image shape (NCHW or NHWC, as they come).
    """

    def __init__(self, capacity: int, image_shape: tuple[int, ...], dtype: torch.dtype, classes: int,
                 device: torch.device, depth: int = 2) -> None:
        self.image_shape, self.dtype = tuple(image_shape), dtype
        self.upload_stream = torch.cuda.Stream(device)
        self.slots = [_Slot(capacity, image_shape, dtype, classes, device) for _ in range(depth)]
        self._next = 0

    def next_slot(self) -> _Slot:
        """The slots in turn; the caller waits for a slot's `done` before reusing it."""
        slot = self.slots[self._next]
        self._next = (self._next + 1) % len(self.slots)
        return slot


class _Slot:
    def __init__(self, capacity: int, image_shape: tuple[int, ...], dtype: torch.dtype, classes: int,
                 device: torch.device) -> None:
        self.host_images = torch.empty((capacity, *image_shape), dtype=dtype, pin_memory=True)
        self.device_images = torch.empty_like(self.host_images, device=device)
        self.host_logits = torch.empty((capacity, classes), dtype=torch.float32, pin_memory=True)
        self.uploaded = torch.cuda.Event()
        self.done = torch.cuda.Event()

    def upload(self, images: torch.Tensor, stream: torch.cuda.Stream) -> torch.Tensor:
        """Copy host `images` (n, ...) into pinned memory (on the CPU), then to the device on `stream`; the
        current stream waits for the copy. Returns the device view (n, ...).

        Images already in contiguous pinned memory go up directly, without the staging copy (which is
        what bounds end-to-end throughput when the GPU is fast); then this waits for the upload, since the
        caller may refill its buffer as soon as it has control again."""
        n = images.shape[0]
        direct = images.is_pinned() and images.is_contiguous()
        if not direct:
            self.host_images[:n].copy_(images)
        with torch.cuda.stream(stream):
            self.device_images[:n].copy_(images if direct else self.host_images[:n], non_blocking=True)
            self.uploaded.record(stream)
        torch.cuda.current_stream(self.device_images.device).wait_event(self.uploaded)
        if direct:
            self.uploaded.synchronize()
        return self.device_images[:n]

    def download(self, logits: torch.Tensor) -> None:
        """Start copying device `logits` (n, K) to pinned host memory on the current stream; record `done`."""
        self.host_logits[: logits.shape[0]].copy_(logits, non_blocking=True)
        self.done.record()


@dataclass
class EngineBuffers:
    """Every piece of memory an Engine reuses between calls, in one place: folded input buffers per bucket
    and pinned staging for prepare() (used under the engine's lock), and a pool of the CUDA pipeline's slot
    sets per input dtype and per-image shape (each pipelined run takes its own)."""

    folded: dict[int, FoldedBuffer] = field(default_factory=dict)
    staging: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    streams: dict[tuple[Any, ...], list[StreamSlots]] = field(default_factory=dict)  # free sets per input kind
