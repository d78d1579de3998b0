"""Engine: images in any batch size and layout -> per-image logits, through a chosen backend.

    predict(images (B, C, H, W) or (B, H, W, C), uint8 or float) -> logits (B, K) float32 on CPU
    predict_stream(iterable of such batches) -> iterator of their logits, in order

Per chunk of at most `max_batch` images: copy into a preallocated folded buffer (normalising on
the way: uint8 / 255 or float in [0, 1], then (x - mean) / std), zero the padding slots of the
last group, run the backend's folded forward, unfold, drop the padding. A backend that
`reads_raw_images` (triton) gets uint8 chunks as they are and folds and normalises them itself.

On CUDA the chunks run through a two-deep pipeline: host images go to pinned memory and up on a
side stream while the previous chunk computes, are normalised and folded on the GPU in one pass
(images are uploaded as they come, uint8 stays uint8), and the logits come back asynchronously.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any, NamedTuple

import torch
from torch import nn

from ..checkpoint import load_checkpoint
from ..device import dtype_name, resolve_device, resolve_dtype
from ..errors import FoldedCNNError, check_int
from ..folded import FoldedModel
from ..layout import Folded, check_fold, round_up, unfold_logits
from . import _autotune as autotune
from ._batch_independence import splits_exactly
from ._buffers import EngineBuffers, FoldedBuffer, StreamSlots, bucket_sizes
from ._preprocess import (
    affine,
    as_tensor,
    check_finite,
    check_finite_logits,
    check_finite_weights,
    fold_normalised,
    image_layout,
)
from .backends import BACKENDS, Backend, available_backends, create_backend


def as_folded_model(model: FoldedModel | nn.Module | str | os.PathLike, trust_code: bool = False) -> FoldedModel:
    """A FoldedModel for what Engine accepts: itself, a zoo network wrapped, or a checkpoint path loaded
    (with `trust_code` passed to load_checkpoint)."""
    if isinstance(model, FoldedModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_checkpoint(model, trust_code=trust_code).model
    if isinstance(model, nn.Module):
        return FoldedModel(model)  # a network without an identity raises, naming the fix
    raise FoldedCNNError(f"Engine needs a FoldedModel, a zoo network (create_model) or a checkpoint path, got "
                         f"{type(model).__name__}")


class _InFlight(NamedTuple):
    """A chunk launched on the GPU: its logits land in slot.host_logits, then in out[start:start + n]."""

    slot: Any  # _buffers._Slot, or None for an empty batch
    out: torch.Tensor
    start: int
    n: int
    last: bool  # the batch's last chunk


class Engine:
    """Batched inference of a folded model through one backend.

    `model`: a FoldedModel, a zoo network (`create_model(...)`), or the path of a checkpoint. The
    model's own normalisation is used (the one training stored, a checkpoint's, or the default for an
    untrained network) unless `normalization` is given.
    `backend`: "torch", "compile", "compile-max" (CUDA only: max-autotune), "onnxruntime", "torch-plain",
    "triton" or "auto" (time the candidates once per model, device, dtype and batch; the choice is cached
    under foldedcnn.device.cache_dir(); "compile-max" and "triton" are candidates on CUDA only). A model
    "triton" cannot fuse runs on "torch" with a BackendFallbackWarning; `backend.fallback_reason` keeps why.
    `device`: "cpu", "cuda" or None (CUDA when present). `dtype`: float32 / float16 / bfloat16 or None
    (float16 on CUDA, float32 on CPU). `max_batch`: images per backend call, rounded up to a multiple of f.
    `trust_code`: allow a checkpoint path whose model is built by a `factory` it names (see load_checkpoint).
    `pad_to_max`: a static-shape backend (compile, compile-max) runs every call at max_batch, a shorter one
    padded: one compile in all instead of one per batch bucket (tens of seconds each with max-autotune), for
    callers whose calls are max_batch but a few, like the video job (a video's last batch).

    Thread safety: `predict` may be called from several threads at once. The engine holds one set of
    preallocated buffers (and a backend that may keep static ones, e.g. CUDA graphs), so each chunk's
    prepare -> forward -> copy-out runs under a lock: calls are serialised chunk by chunk and every
    caller gets its own images' logits. `prepare` alone returns a buffer the next call reuses; callers
    that use it directly from several threads must hold `engine.lock` until they are done with it.
    """

    def __init__(
        self,
        model: FoldedModel | nn.Module | str | os.PathLike,
        backend: str = "auto",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        max_batch: int = 1024,
        normalization: dict[str, list[float]] | None = None,
        trust_code: bool = False,
        pad_to_max: bool = False,
    ) -> None:
        model = as_folded_model(model, trust_code)
        check_finite_weights(model)
        norm = normalization or model.normalization
        check_int("max_batch", max_batch, 1)
        self.model = model.eval()
        self.fold = check_fold(model.fold)
        self.num_classes = model.num_classes
        self.input_shape: tuple[int, int, int] = tuple(model.input_shape)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.max_batch = round_up(max_batch, self.fold)
        self.normalization = {"mean": list(norm["mean"]), "std": list(norm["std"])}
        c = self.input_shape[0]
        self.lock = threading.Lock()
        self.pad_to_max = pad_to_max
        self._affine = {u8: affine(self.normalization, c, u8, self.device, self.dtype) for u8 in (True, False)}
        self._use(self._choose(backend))

    @property
    def batch_independent(self) -> bool:
        """Whether an image's logits are the same, bit for bit, whichever other images share its call (calls cut
        at multiples of f, so fold groups stay whole): probed once on random images (_batch_independence), about
        two batches of work. True for ONNX Runtime on the CPU as measured; a backend that picks its algorithm by
        batch size is not."""
        if self._independent is None:
            self._independent = splits_exactly(self.predict, self.max_batch, self.fold, self.input_shape)
        return self._independent

    @property
    def backend_name(self) -> str:
        """Name of the backend in use (after "auto" resolved)."""
        return self.backend.name

    def _use(self, backend: Backend) -> Backend:
        """Make `backend` current, with fresh buckets and buffers in its layout."""
        self.backend = backend
        self._buckets = bucket_sizes(self.max_batch, self.fold, backend.static_shapes, self.pad_to_max)
        self._mem = EngineBuffers()
        self._independent: bool | None = None  # batch_independent of this backend, probed when asked
        return backend

    def _choose(self, name: str) -> Backend:
        if name != "auto":
            return create_backend(name, self.model, self.device, self.dtype)
        key = autotune.cache_key(self.model, self.device, self.dtype, self.max_batch)
        cached = autotune.cached_choice(key)
        available = available_backends(self.device, self.dtype)
        if cached in available:
            return create_backend(cached, self.model, self.device, self.dtype)
        candidates = [n for n in available if n != "torch-plain" and BACKENDS[n].considered_by_auto(self.device)
                      and BACKENDS[n].model_unsupported_reason(self.model) is None]
        probe = torch.rand(self.max_batch, *self.input_shape)
        backends: dict[str, Backend] = {}
        runs = {}
        for cand in candidates:  # each with its input in its own layout
            backends[cand] = self._use(create_backend(cand, self.model, self.device, self.dtype))
            runs[cand] = partial(backends[cand].forward_folded, self.prepare(probe).images)
        seconds = autotune.seconds_per_batch(runs, self.device)
        best = autotune.pick(seconds, {n for n in candidates if BACKENDS[n].compiles_per_bucket})
        autotune.remember_choice(key, best, seconds)
        return backends[best]

    def _buffer(self, num_images: int) -> FoldedBuffer:
        bucket = next(b for b in self._buckets if b >= num_images)
        if bucket not in self._mem.folded:
            self._mem.folded[bucket] = FoldedBuffer(bucket // self.fold, self.fold, self.input_shape,
                                                    self.backend.channels_last, self.device, self.dtype)
        return self._mem.folded[bucket]

    def _to_device(self, chunk: torch.Tensor, bucket: int) -> torch.Tensor:
        """Copy a host chunk to the device through a pinned staging buffer kept per bucket and shape."""
        key = (bucket, chunk.dtype, tuple(chunk.shape[1:]))
        if key not in self._mem.staging:
            host = torch.empty((bucket, *chunk.shape[1:]), dtype=chunk.dtype, pin_memory=self.device.type == "cuda")
            self._mem.staging[key] = (host, torch.empty_like(host, device=self.device))
        host, dev = self._mem.staging[key]
        n = chunk.shape[0]
        host[:n].copy_(chunk)
        dev[:n].copy_(host[:n], non_blocking=True)
        return dev[:n]

    def prepare(self, images: Any) -> Folded:
        """Validate, normalise and fold at most `max_batch` images into a preallocated buffer.

        images (n, C, H, W) or (n, H, W, C) -> Folded(folded (G, f*C, H, W) on the device in the
        engine dtype, n); G = ceil(n / f), or the bucket's group count for static-shape backends.
        The returned tensor is reused by the next call.
        """
        x = as_tensor(images)
        layout = image_layout(x, self.input_shape)
        n = x.shape[0]
        if not 1 <= n <= self.max_batch:
            raise FoldedCNNError(f"prepare() takes 1..{self.max_batch} images, got {n}; predict() chunks any batch")
        check_finite(x)
        buf = self._buffer(n)
        if x.device != self.device:
            x = self._to_device(x, buf.groups * self.fold) if self.device.type == "cuda" else x.to(self.device)
        if layout == "NHWC":
            x = x.permute(0, 3, 1, 2)
        f = self.fold
        full, rest = divmod(n, f)
        groups = full + (rest > 0)
        dst = buf.images
        dst[:full].copy_(x[: full * f].unflatten(0, (full, f)))
        if rest:
            dst[full, :rest].copy_(x[full * f:])
        scale, shift = self._affine[x.dtype == torch.uint8]
        used = dst[:groups]
        used.mul_(scale).add_(shift)
        if rest:
            dst[full, rest:].zero_()
        used_groups = buf.groups if self.backend.static_shapes else groups
        return Folded(buf.folded[:used_groups], n)

    def predict(self, images: Any) -> torch.Tensor:
        """Logits (B, K) float32 on CPU for images (B, C, H, W) or (B, H, W, C), any B.

        uint8 images are scaled by 1/255, float images must be in [0, 1]; then (x - mean) / std.
        A rank-3 input, wrong channels / size / dtype raise ShapeError; NaN or inf raise NonFiniteInputError,
        float values outside [0, 1] InputRangeError; non-finite logits raise NonFiniteOutputError.
        """
        if self.device.type == "cuda":
            run = self._predict_pipelined([images])
            try:
                return next(run)
            finally:
                run.close()  # gives the run's slot sets back to the pool now
        x = as_tensor(images)
        image_layout(x, self.input_shape)
        b = x.shape[0]
        out = torch.empty(b, self.num_classes, dtype=torch.float32)
        for start in range(0, b, self.max_batch):
            with self.lock:  # the buffers (and a static-shape backend's) are shared: one chunk at a time
                chunk = x[start:start + self.max_batch]
                n = chunk.shape[0]
                if self.backend.reads_raw_images and chunk.dtype == torch.uint8:
                    logits = self.backend.forward_images(self._images_on_device(chunk), self.normalization)
                else:
                    logits = self.backend.forward_folded(self.prepare(chunk).images)
                out[start:start + n].copy_(unfold_logits(logits, self.fold, n))
        return check_finite_logits(out)

    def predict_stream(self, batches: Iterable[Any]) -> Iterator[torch.Tensor]:
        """For each batch of `batches` (each as predict() takes it, any size), its logits (B, K) float32 on
        CPU, in order. On CUDA, chunk n + 1 is copied up while chunk n computes, so batch i + 1 is read
        from `batches` before batch i's logits are yielded; on CPU this is predict() per batch."""
        if self.device.type == "cuda":
            yield from self._predict_pipelined(batches)
            return
        for images in batches:
            yield self.predict(images)

    def _take_slots(self, images: torch.Tensor) -> StreamSlots:
        """Pinned and device memory for one pipelined run over images of this dtype and per-image shape: a
        free set from the engine's pool, or a new one (concurrent runs never share a set)."""
        key = (images.dtype, tuple(images.shape[1:]))
        with self.lock:
            free = self._mem.streams.setdefault(key, [])
            if free:
                return free.pop()
        return StreamSlots(self.max_batch, key[1], images.dtype, self.num_classes, self.device)

    def _return_slots(self, slots: StreamSlots) -> None:
        key = (slots.dtype, slots.image_shape)
        with self.lock:
            self._mem.streams[key].append(slots)

    def _launch(self, chunk: torch.Tensor, layout: str, slots: StreamSlots, out: torch.Tensor, start: int,
                last: bool) -> _InFlight:
        """Queue one chunk (n <= max_batch images) on the GPU: upload, normalise + fold, forward, logits down."""
        check_finite(chunk)
        slot = slots.next_slot()
        n = chunk.shape[0]
        x = chunk.to(self.device) if chunk.is_cuda else slot.upload(chunk, slots.upload_stream)
        with self.lock:  # the folded buffer and a static-shape backend's are shared: enqueue one chunk at a time
            if self.backend.reads_raw_images and x.dtype == torch.uint8:  # it folds and normalises in its kernel
                logits = self.backend.forward_images(x, self.normalization)
            else:
                nchw = x.permute(0, 3, 1, 2) if layout == "NHWC" else x
                buf = self._buffer(n)
                groups = fold_normalised(nchw, buf.images, *self._affine[nchw.dtype == torch.uint8])
                logits = self.backend.forward_folded(buf.folded[: buf.groups if self.backend.static_shapes
                                                                else groups])
            slot.download(unfold_logits(logits, self.fold, n))
        return _InFlight(slot, out, start, n, last)

    def _predict_pipelined(self, batches: Iterable[Any]) -> Iterator[torch.Tensor]:
        """predict_stream on CUDA: at most one chunk per slot in flight; a slot is reused once its logits are home.
        Each run takes its own slot sets from the engine's pool and gives them back when its chunks are done."""
        in_flight: deque[_InFlight] = deque()
        taken: dict[tuple[Any, ...], StreamSlots] = {}

        def land() -> torch.Tensor | None:
            """Wait for the oldest chunk's logits; its batch's logits when that was the batch's last chunk."""
            job = in_flight.popleft()
            if job.slot is not None:
                job.slot.done.synchronize()
                job.out[job.start:job.start + job.n].copy_(job.slot.host_logits[: job.n])
            return check_finite_logits(job.out) if job.last else None

        try:
            for images in batches:
                x = as_tensor(images)
                layout = image_layout(x, self.input_shape)
                b = x.shape[0]
                out = torch.empty(b, self.num_classes, dtype=torch.float32)
                if b == 0:
                    in_flight.append(_InFlight(None, out, 0, 0, True))
                    continue
                key = (x.dtype, tuple(x.shape[1:]))
                if key not in taken:
                    taken[key] = self._take_slots(x)
                slots = taken[key]
                for start in range(0, b, self.max_batch):
                    while sum(job.slot is not None for job in in_flight) >= len(slots.slots):
                        if (done := land()) is not None:
                            yield done
                    chunk = x[start:start + self.max_batch]
                    in_flight.append(self._launch(chunk, layout, slots, out, start, start + self.max_batch >= b))
            while in_flight:
                if (done := land()) is not None:
                    yield done
        finally:  # also when the caller stops early or a batch is refused: wait for what is queued, then give back
            for job in in_flight:
                if job.slot is not None:
                    job.slot.done.synchronize()
            for slots in taken.values():
                self._return_slots(slots)

    def _images_on_device(self, chunk: torch.Tensor) -> torch.Tensor:
        """A chunk of raw images on the engine's device, as they are (the backend folds and normalises)."""
        if chunk.device == self.device:
            return chunk
        if self.device.type == "cuda":
            return self._to_device(chunk, next(b for b in self._buckets if b >= chunk.shape[0]))
        return chunk.to(self.device)

    def __repr__(self) -> str:
        return (f"Engine(backend={self.backend_name!r}, fold={self.fold}, classes={self.num_classes}, "
                f"input={self.input_shape}, device={self.device}, dtype={dtype_name(self.dtype)}, "
                f"max_batch={self.max_batch})")


__all__ = ["Engine"]
