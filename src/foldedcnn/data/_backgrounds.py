"""Backgrounds of the game-HUD generator: crops of real video frames and procedural textures.

The bank is BANK_SIZE crops (BANK_HW) of vtest.avi frames at random scales, built once with a fixed
seed and cached as $FOLDEDCNN_CACHE/game-backgrounds-v2.npy. All samplers work on whole batches,
channels first (N, 3, H, W) float32 in [0, 255] (numpy is slow on a trailing axis of 3).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

from ..device import cache_dir
from ..fsio import atomic_path
from .types import DataError

BANK_SIZE = 384
BANK_HW = (48, 112)


def _build_bank() -> np.ndarray:
    import cv2

    from .video import iter_frames
    from .vtest import vtest_path

    rng = np.random.default_rng(1234)
    frames = [f.rgb for f in iter_frames(vtest_path(), stride=25)]
    bh, bw = BANK_HW
    bank = np.empty((BANK_SIZE, 3, bh, bw), np.uint8)
    for i in range(BANK_SIZE):
        frame = frames[rng.integers(0, len(frames))]
        scale = rng.uniform(0.5, 4.0)
        h, w = min(int(bh * scale), frame.shape[0]), min(int(bw * scale), frame.shape[1])
        y, x = rng.integers(0, frame.shape[0] - h + 1), rng.integers(0, frame.shape[1] - w + 1)
        bank[i] = cv2.resize(frame[y : y + h, x : x + w], (bw, bh), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
    return bank


@lru_cache(maxsize=1)
def background_bank() -> np.ndarray | None:
    """uint8 (BANK_SIZE, 3, 48, 112) crops of vtest.avi, or None (with a warning) when vtest.avi is absent."""
    path = cache_dir() / "game-backgrounds-v2.npy"
    if path.is_file():
        bank = np.load(path, allow_pickle=False)
        if bank.shape == (BANK_SIZE, 3, *BANK_HW):
            return bank
    try:
        bank = _build_bank()
    except DataError as exc:
        warnings.warn(f"game backgrounds: only procedural textures ({exc})", stacklevel=2)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # atomic publish, safe with parallel builders
        np.save(f, bank)
    return bank


def video_crops(rng: np.random.Generator, n: int, hw: tuple[int, int], bank: np.ndarray) -> np.ndarray:
    """n random (h, w) windows of random bank crops, randomly mirrored and dimmed (HUD panels are often dark)."""
    h, w = hw
    idx = rng.integers(0, bank.shape[0], n)
    oy = rng.integers(0, bank.shape[2] - h + 1, n)
    ox = rng.integers(0, bank.shape[3] - w + 1, n)
    flip = rng.random(n) < 0.5
    out = np.empty((n, 3, h, w), np.float32)
    for i in range(n):  # plain slices: far faster than one fancy-indexed gather
        crop = bank[idx[i], :, oy[i] : oy[i] + h, ox[i] : ox[i] + w]
        out[i] = crop[:, :, ::-1] if flip[i] else crop
    out *= rng.uniform(0.35, 1.1, (n, 1, 1, 1)).astype(np.float32)
    return out


def gradients(rng: np.random.Generator, n: int, hw: tuple[int, int]) -> np.ndarray:
    """n linear gradients between two random colours at random angles."""
    h, w = hw
    theta = rng.uniform(0, 2 * np.pi, n)
    dx, dy = (np.cos(theta) / w).astype(np.float32), (np.sin(theta) / h).astype(np.float32)
    t = dx[:, None, None] * np.arange(w, dtype=np.float32) + dy[:, None, None] * np.arange(h, dtype=np.float32)[:, None]
    lo = np.minimum(0, dx) * (w - 1) + np.minimum(0, dy) * (h - 1)  # extremes of a linear ramp are at corners
    span = np.abs(dx) * (w - 1) + np.abs(dy) * (h - 1) + 1e-6
    t = (t - lo[:, None, None]) / span[:, None, None]
    c0, c1 = rng.uniform(0, 255, (2, n, 3, 1, 1)).astype(np.float32)
    return c0 + (c1 - c0) * t[:, None]


def _linear_upsample(size: int, coarse: int) -> np.ndarray:
    """(size, coarse) matrix of bilinear interpolation weights (half-pixel centres, edges clamped)."""
    pos = np.clip((np.arange(size) + 0.5) * coarse / size - 0.5, 0, coarse - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, coarse - 1)
    m = np.zeros((size, coarse), np.float32)
    np.add.at(m, (np.arange(size), lo), 1 - (pos - lo))
    np.add.at(m, (np.arange(size), hi), pos - lo)
    return m


def noise_textures(rng: np.random.Generator, n: int, hw: tuple[int, int]) -> np.ndarray:
    """n smooth colour-noise textures: coarse random grids upsampled bilinearly (two small matmuls)."""
    h, w = hw
    ch, cw = max(2, h // 5), max(2, w // 6)
    coarse = rng.uniform(0, 255, (n, 3, ch, cw)).astype(np.float32)
    return _linear_upsample(h, ch) @ coarse @ _linear_upsample(w, cw).T


def sample_backgrounds(rng: np.random.Generator, n: int, hw: tuple[int, int]) -> np.ndarray:
    """n backgrounds (N, 3, h, w) float32: about 60% video crops, 20% gradients, 20% noise textures."""
    bank = background_bank()
    kind = rng.random(n)
    if bank is None:
        kind = 0.6 + 0.4 * kind
    out = np.empty((n, 3, *hw), np.float32)
    parts = [(kind < 0.6, lambda m: video_crops(rng, m, hw, bank)), ((kind >= 0.6) & (kind < 0.8),
             lambda m: gradients(rng, m, hw)), (kind >= 0.8, lambda m: noise_textures(rng, m, hw))]
    for mask, make in parts:
        if mask.any():
            out[mask] = make(int(mask.sum()))
    return out
