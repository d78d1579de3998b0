"""Synthetic game-HUD images for the six game-scraping tasks (the paper's game data is synthetic too).

Each image: a background (video crop, gradient or noise texture), a text of the task's structure
drawn in a random font (GAME_FONTS), size, position and colour, with an outline or a drop shadow,
then blur, sensor noise and JPEG artefacts. "other" images hold wrong-structure or out-of-range
text (60%), a valid text cut off by the image border (25%), or no text (15%).

Speed: glyphs are pre-rendered per (font, size) to numpy masks (fonts.glyph_set); the per-image
Python work is pasting a few masks, everything else runs on the whole chunk at once. Images come
in chunks of CHUNK, chunk c seeded by (seed, stream, c) (and the draw d > 0 of a fresh training set:
(seed, stream, c, d)), so the output does not depend on `workers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import torch

from ..models.game import GAME_TASKS
from ._backgrounds import sample_backgrounds
from ._fonts import GAME_FONTS, GlyphSet, font_paths, glyph_set
from .game_labels import CHARSET, check_task, class_names, classify_text, other_text, text_for_class
from .noscope import check_split
from .types import DataError, LabelledImages

CHUNK = 512
SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class TextPlan:
    """What one image shows: `text` in font `font` (index into GAME_FONTS) with digits `digit_height`
    pixels tall, its top-left corner at (x, y) (negative or past the edge when `cut`)."""

    text: str
    font: int
    digit_height: int
    x: int
    y: int
    cut: bool


@dataclass
class GameBatch:
    """images uint8 (N, 3, H, W), labels int64 (N,), and the plan of each image (its text; '' for none)."""

    images: np.ndarray
    labels: np.ndarray
    plans: list[TextPlan]


@cache
def _glyphs(font: int, digit_height: int) -> GlyphSet:
    return glyph_set(font_paths((GAME_FONTS[font],))[0], digit_height, CHARSET)


@lru_cache(maxsize=1 << 16)
def _text_mask(font: int, digit_height: int, text: str) -> np.ndarray:
    """Coverage mask of `text` (cached: HUD texts repeat a lot); do not modify the result."""
    return _glyphs(font, digit_height).render(text)


def _fit(text: str, font: int, hw: tuple[int, int], rng: np.random.Generator) -> int:
    """A random digit height in [0.45 H, 0.8 H] at which `text` fits in the image (shrinking if needed)."""
    h, w = hw
    lo = max(5, round(0.45 * h))
    dh = int(rng.integers(lo, max(lo, round(0.8 * h)) + 1))
    while dh > lo - 2:
        th, tw = _text_mask(font, dh, text).shape
        if th <= h and tw <= w:
            break
        dh -= 1
    return dh


def plan_text(task: str, label: int, font: int, rng: np.random.Generator) -> TextPlan:
    """Choose the text, size and position of one image of class `label`."""
    hw = GAME_TASKS[task][0]
    h, w = hw
    other = label == len(class_names(task)) - 1
    kind = rng.random() if other else 0.0
    if kind >= 0.85:
        return TextPlan("", font, 0, 0, 0, False)
    cut = kind >= 0.6
    if not other:
        text = text_for_class(task, label, rng)
    elif cut:  # a valid text of a random class, then pushed partly out of the image below
        text = text_for_class(task, int(rng.integers(0, label)), rng)
    else:
        text = other_text(task, rng)
    dh = _fit(text, font, hw, rng)
    th, tw = _text_mask(font, dh, text).shape
    x = int(rng.integers(0, max(0, w - tw) + 1))
    y = int(rng.integers(0, max(0, h - th) + 1))
    if cut:  # push 35-70% of the text out over one border
        side = rng.integers(0, 3)
        if side == 0:
            x = -int(tw * rng.uniform(0.35, 0.7))
        elif side == 1:
            x = w - int(tw * rng.uniform(0.3, 0.65))
        else:
            y = h - int(th * rng.uniform(0.3, 0.55))
    return TextPlan(text, font, dh, x, y, cut)


def _paste(canvas: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    h, w = canvas.shape
    mh, mw = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + mw, w), min(y + mh, h)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = mask[y0 - y : y1 - y, x0 - x : x1 - x]


def _shift_max(a: np.ndarray) -> np.ndarray:
    """3x3 max filter over the last two axes of (N, H, W)."""
    p = np.pad(a, ((0, 0), (1, 1), (1, 1)))
    h, w = a.shape[1:]
    out = a.copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(out, p[:, dy : dy + h, dx : dx + w], out=out)
    return out


def _blur(x: np.ndarray) -> np.ndarray:
    """[1, 2, 1]/4 blur along H and W of (N, 3, H, W), edges replicated."""
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)), mode="edge")
    x = 0.25 * p[:, :, :-2] + 0.5 * p[:, :, 1:-1] + 0.25 * p[:, :, 2:]
    p = np.pad(x, ((0, 0), (0, 0), (0, 0), (1, 1)), mode="edge")
    return 0.25 * p[..., :-2] + 0.5 * p[..., 1:-1] + 0.25 * p[..., 2:]


def compose(plans: Sequence[TextPlan], hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Draw `plans` over random backgrounds: uint8 (N, 3, H, W)."""
    import cv2

    n = len(plans)
    h, w = hw
    img = sample_backgrounds(rng, n, hw)
    alpha = np.zeros((n, h, w), np.float32)
    for i, p in enumerate(plans):
        if p.text:
            _paste(alpha[i], _text_mask(p.font, p.digit_height, p.text), p.x, p.y)
    # Text colour: mostly bright HUD colours; the effect (outline / shadow) contrasts with it.
    colour = rng.uniform(0, 255, (n, 3)).astype(np.float32)
    bright = rng.random(n) < 0.75
    colour[bright] = 255 - rng.uniform(0, 255, (int(bright.sum()), 3)) * rng.uniform(0, 0.6, (int(bright.sum()), 1))
    luminance = colour @ np.array([0.299, 0.587, 0.114], np.float32)
    effect_colour = np.where((luminance > 110)[:, None], rng.uniform(0, 60, (n, 3)),
                             rng.uniform(190, 255, (n, 3))).astype(np.float32)
    mode = rng.choice(3, n, p=[0.35, 0.4, 0.25])  # none, outline, shadow
    background = img[:, :, ::3, ::3].mean(axis=(2, 3)) @ np.array([0.299, 0.587, 0.114], np.float32)
    mode[(mode == 0) & (np.abs(luminance - background) < 70)] = 1  # low contrast: outline it so it stays legible
    effect = np.zeros_like(alpha)
    outline, shadow = mode == 1, mode == 2
    effect[outline] = _shift_max(alpha[outline])
    effect[shadow, 1:, 1:] = alpha[shadow, :-1, :-1]
    img += (effect_colour[:, :, None, None] - img) * effect[:, None]
    alpha *= rng.uniform(0.8, 1.0, (n, 1, 1)).astype(np.float32)  # opacity
    img += (colour[:, :, None, None] - img) * alpha[:, None]
    blurred = rng.random(n) < 0.4
    img[blurred] = _blur(img[blurred])
    noise = torch.randn(img.shape, generator=torch.Generator().manual_seed(int(rng.integers(2**62)))).numpy()
    img += noise * rng.uniform(0, 10, (n, 1, 1, 1)).astype(np.float32)
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    for i in np.nonzero(rng.random(n) < 0.35)[0]:
        hwc = np.ascontiguousarray(out[i].transpose(1, 2, 0))
        ok, buf = cv2.imencode(".jpg", hwc, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 91))])
        out[i] = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).transpose(2, 0, 1)
    return out


def _chunk(task: str, n: int, seed: int, stream: int, index: int, fonts: tuple[int, ...], draw: int) -> GameBatch:
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream, index] + ([draw] if draw else [])))
    k = len(class_names(task))
    labels = rng.integers(0, k, n)
    font_choice = rng.integers(0, len(fonts), n)
    plans = [plan_text(task, int(y), fonts[f], rng) for y, f in zip(labels, font_choice, strict=True)]
    return GameBatch(compose(plans, GAME_TASKS[task][0], rng), labels.astype(np.int64), plans)


def check_fonts(fonts: Sequence[int] | None) -> tuple[int, ...]:
    """Font indices into GAME_FONTS (all when None); raises DataError for an empty or bad selection."""
    chosen = tuple(range(len(GAME_FONTS))) if fonts is None else tuple(int(f) for f in fonts)
    if not chosen or any(not 0 <= f < len(GAME_FONTS) for f in chosen):
        raise DataError(f"fonts must be a non-empty selection of 0..{len(GAME_FONTS) - 1}, got {fonts}")
    return chosen


def generate_batch(task: str, n: int, seed: int = 0, *, stream: int = 0, fonts: Sequence[int] | None = None,
                   workers: int = 1, draw: int = 0) -> GameBatch:
    """n images of `task`: uint8 (n, 3, H, W), labels (n,) and their plans; deterministic in (seed, stream,
    fonts, draw). Each `draw` (>= 0) of the same (seed, stream) is a different set of images.

    `workers` > 1 renders chunks in that many processes (same output).
    """
    if draw < 0:
        raise DataError(f"draw must be >= 0, got {draw}")
    check_task(task)
    if n < 0:
        raise DataError(f"n must be >= 0, got {n}")
    fonts = check_fonts(fonts)
    font_paths(tuple(GAME_FONTS[f] for f in fonts))  # fail early, naming the packages
    jobs = [(task, min(CHUNK, n - s), seed, stream, s // CHUNK, fonts, draw) for s in range(0, n, CHUNK)]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_chunk, *zip(*jobs, strict=True)))
    else:
        parts = [_chunk(*job) for job in jobs]
    if not parts:
        h, w = GAME_TASKS[task][0]
        return GameBatch(np.zeros((0, 3, h, w), np.uint8), np.zeros(0, np.int64), [])
    return GameBatch(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
                     [q for p in parts for q in p.plans])


def split_fonts(split: str, holdout_fonts: int = 0) -> tuple[int, ...]:
    """Fonts of a split: with `holdout_fonts` = k > 0, train uses all but the last k of GAME_FONTS and
    val/test only those k (a test of generalisation to unseen fonts)."""
    k = len(GAME_FONTS)
    if not 0 <= holdout_fonts < k:
        raise DataError(f"holdout_fonts must be in 0..{k - 1}, got {holdout_fonts}")
    if holdout_fonts == 0:
        return tuple(range(k))
    return tuple(range(k - holdout_fonts)) if split == "train" else tuple(range(k - holdout_fonts, k))


def generate_game(task: str, split: str, n: int, seed: int = 0, *, holdout_fonts: int = 0,
                  workers: int = 1, draw: int = 0) -> LabelledImages:
    """Split `split` of game task `task`: n images uint8 (n, 3, H, W) with labels (n,).

    Splits draw from disjoint seed streams, so train, val and test never share a random draw. `draw` d > 0
    gives a new set of the split (fresh training images for epoch d); draw 0 is the split itself.
    """
    batch = generate_batch(task, n, seed, stream=SPLIT_STREAMS[check_split(split)],
                           fonts=split_fonts(split, holdout_fonts),
                           workers=workers, draw=draw)
    return LabelledImages(torch.from_numpy(batch.images), torch.from_numpy(batch.labels), class_names(task),
                          f"{task}/{split}")


def render_text(task: str, text: str, *, font: int = 0, digit_height: int | None = None,
                seed: int = 0) -> tuple[np.ndarray, int]:
    """Draw `text` fully visible and centred in an image of `task`: returns (uint8 (3, H, W), its class)."""
    check_task(task)
    check_fonts([font])
    hw = GAME_TASKS[task][0]
    h, w = hw
    rng = np.random.default_rng(seed)
    unknown = sorted(set(text) - set(CHARSET))
    if unknown:
        raise DataError(f"cannot draw {unknown}; the generator draws {CHARSET!r}")
    if digit_height is None:
        digit_height = _fit(text, font, hw, rng)
    th, tw = _text_mask(font, digit_height, text).shape
    if tw > w or th > h:
        raise DataError(f"{text!r} at digit height {digit_height} is {tw}x{th} px, larger than the {w}x{h} image")
    plan = TextPlan(text, font, digit_height, (w - tw) // 2, (h - th) // 2, False)
    return compose([plan], hw, rng)[0], classify_text(task, text)
