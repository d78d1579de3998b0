"""Backgrounds of the game-HUD generator: crops of real video frames and procedural textures.

The bank is BANK_SIZE crops (BANK_HW) of vtest.avi frames at random scales, built once with a fixed
seed and cached as $FOLDEDCNN_DATA/game-backgrounds-v1.npy. All samplers work on whole batches:
(N, H, W, 3) float32 in [0, 255].
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import torch

from .types import DataError, data_dir

BANK_SIZE = 384
BANK_HW = (48, 112)


def _build_bank() -> np.ndarray:
    import cv2

    from .video import iter_frames
    from .vtest import vtest_path

    rng = np.random.default_rng(1234)
    frames = [f.rgb for f in iter_frames(vtest_path(), stride=25)]
    bh, bw = BANK_HW
    bank = np.empty((BANK_SIZE, bh, bw, 3), np.uint8)
    for i in range(BANK_SIZE):
        frame = frames[rng.integers(0, len(frames))]
        scale = rng.uniform(0.5, 4.0)
        h, w = min(int(bh * scale), frame.shape[0]), min(int(bw * scale), frame.shape[1])
        y, x = rng.integers(0, frame.shape[0] - h + 1), rng.integers(0, frame.shape[1] - w + 1)
        bank[i] = cv2.resize(frame[y : y + h, x : x + w], (bw, bh), interpolation=cv2.INTER_AREA)
    return bank


@lru_cache(maxsize=1)
def background_bank() -> np.ndarray | None:
    """uint8 (BANK_SIZE, 48, 112, 3) crops of vtest.avi, or None (with a warning) when vtest.avi is absent."""
    path = data_dir() / "game-backgrounds-v1.npy"
    if path.is_file():
        bank = np.load(path, allow_pickle=False)
        if bank.shape == (BANK_SIZE, *BANK_HW, 3):
            return bank
    try:
        bank = _build_bank()
    except DataError as exc:
        warnings.warn(f"game backgrounds: only procedural textures ({exc})", stacklevel=2)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, bank)
    tmp.replace(path)
    return bank


def video_crops(rng: np.random.Generator, n: int, hw: tuple[int, int], bank: np.ndarray) -> np.ndarray:
    """n random (h, w) windows of random bank crops, randomly mirrored and dimmed (HUD panels are often dark)."""
    h, w = hw
    idx = rng.integers(0, bank.shape[0], n)
    oy = rng.integers(0, bank.shape[1] - h + 1, n)
    ox = rng.integers(0, bank.shape[2] - w + 1, n)
    rows = oy[:, None, None] + np.arange(h)[None, :, None]
    cols = ox[:, None, None] + np.arange(w)[None, None, :]
    flip = rng.random(n) < 0.5
    cols = np.where(flip[:, None, None], ox[:, None, None] + (w - 1) - np.arange(w)[None, None, :], cols)
    out = bank[idx[:, None, None], rows, cols].astype(np.float32)
    return out * rng.uniform(0.35, 1.1, (n, 1, 1, 1)).astype(np.float32)


def gradients(rng: np.random.Generator, n: int, hw: tuple[int, int]) -> np.ndarray:
    """n linear gradients between two random colours at random angles."""
    h, w = hw
    theta = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.cos(theta) * xx / w + np.sin(theta) * yy / h
    t = (t - t.min(axis=(1, 2), keepdims=True)) / (np.ptp(t, axis=(1, 2), keepdims=True) + 1e-6)
    c0, c1 = rng.uniform(0, 255, (2, n, 1, 1, 3)).astype(np.float32)
    return c0 + (c1 - c0) * t[..., None].astype(np.float32)


def noise_textures(rng: np.random.Generator, n: int, hw: tuple[int, int]) -> np.ndarray:
    """n smooth colour-noise textures: coarse random grids upsampled bilinearly."""
    h, w = hw
    coarse = torch.from_numpy(rng.uniform(0, 255, (n, 3, max(2, h // 5), max(2, w // 6))).astype(np.float32))
    fine = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return fine.permute(0, 2, 3, 1).numpy()


def sample_backgrounds(rng: np.random.Generator, n: int, hw: tuple[int, int]) -> np.ndarray:
    """n backgrounds (N, h, w, 3) float32: about 60% video crops, 20% gradients, 20% noise textures."""
    bank = background_bank()
    kind = rng.random(n)
    out = gradients(rng, n, hw)
    textured = kind >= 0.8
    out[textured] = noise_textures(rng, int(textured.sum()), hw)
    if bank is not None:
        video = kind < 0.6
        out[video] = video_crops(rng, int(video.sum()), hw, bank)
    return out
