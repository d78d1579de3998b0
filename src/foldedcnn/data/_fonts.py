"""Fonts of the game-HUD generator and their glyphs pre-rendered to numpy masks.

Fonts come from Debian packages (fonts-dejavu-core, fonts-liberation2, fonts-hack, fonts-dseg).
GAME_FONTS is in a fixed order: `holdout_fonts=k` keeps the last k out of training.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .types import DataError

FONT_ROOT = Path("/usr/share/fonts/truetype")
GAME_FONTS = (
    "dejavu/DejaVuSans-Bold.ttf",
    "liberation2/LiberationSans-Bold.ttf",
    "dseg/DSEG7Classic-Bold.ttf",
    "hack/Hack-Bold.ttf",
    "dejavu/DejaVuSansCondensed-Bold.ttf",
    "liberation2/LiberationSerif-Bold.ttf",
    "liberation2/LiberationSans-Regular.ttf",
    "dejavu/DejaVuSansMono-Bold.ttf",
    "liberation2/LiberationMono-Bold.ttf",
)


def font_paths(names: tuple[str, ...] = GAME_FONTS) -> list[Path]:
    """Absolute paths of `names`; raises DataError naming the Debian packages when one is missing."""
    paths = [FONT_ROOT / n for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"fonts missing: {', '.join(missing)}; run `make system-deps` (Debian fonts-dejavu-core "
                        "fonts-dseg fonts-liberation2 fonts-hack)")
    return paths


@dataclass(frozen=True)
class GlyphSet:
    """Glyphs of one font at one pixel size, all cropped to the same rows (the digits' ink, 1 px margin).

    masks[c]: float32 (rows, cols) coverage in [0, 1], whose column 0 sits offset[c] (<= 0) pixels from
    the pen; advance[c]: pixels the pen moves after c.
    """

    masks: dict[str, np.ndarray]
    offset: dict[str, int]
    advance: dict[str, int]
    height: int

    def _layout(self, text: str) -> tuple[list[int], int]:
        pen, xs = 0, []
        for c in text:
            xs.append(pen + self.offset[c])
            pen += self.advance[c]
        left = min(xs, default=0)
        right = max([pen] + [x + self.masks[c].shape[1] for x, c in zip(xs, text, strict=True)])
        return [x - left for x in xs], right - left

    def render(self, text: str) -> np.ndarray:
        """Coverage mask float32 (height, width) of `text`, overhangs included."""
        xs, width = self._layout(text)
        out = np.zeros((self.height, width), np.float32)
        for x, c in zip(xs, text, strict=True):
            m = self.masks[c]
            view = out[:, x : x + m.shape[1]]
            np.maximum(view, m, out=view)
        return out


@lru_cache(maxsize=512)
def glyph_set(font: Path, digit_height: int, charset: str) -> GlyphSet:
    """The glyphs of `charset` in `font`, sized so that a digit's ink is `digit_height` pixels tall."""
    from PIL import Image, ImageDraw, ImageFont

    probe = ImageFont.truetype(str(font), 100)
    top, bottom = probe.getbbox("0", anchor="ls")[1::2]
    size = max(4, round(100 * digit_height / (bottom - top)))
    pil = ImageFont.truetype(str(font), size)
    d_top, d_bottom = pil.getbbox("0123456789", anchor="ls")[1::2]
    row0, row1 = d_top - 1, d_bottom + 1
    masks, offset, advance = {}, {}, {}
    for c in charset:
        left, _, right, _ = pil.getbbox(c, anchor="ls")
        left = min(0, left)
        width = max(1, right - left, round(pil.getlength(c)) - left)
        canvas = Image.new("L", (width, row1 - row0))
        ImageDraw.Draw(canvas).text((-left, -row0), c, font=pil, fill=255, anchor="ls")
        mask = np.asarray(canvas, np.float32) / 255.0
        advance[c] = round(pil.getlength(c))
        offset[c] = left
        cols = np.nonzero(mask.max(axis=0) > 0)[0]
        if advance[c] == 0 and cols.size:
            # DSEG draws '.' and ':' into the previous digit's cell, 1 px thin: give them their own cell,
            # at least 2 px thick, so the structure stays legible at HUD sizes.
            mask = mask[:, cols[0] : cols[-1] + 1]
            mask = np.maximum(mask, np.pad(mask, ((0, 0), (1, 0)))[:, :-1])
            mask = np.maximum(mask, np.pad(mask, ((1, 0), (0, 0)))[:-1])
            mask = np.pad(mask, ((0, 0), (0, 1)))
            offset[c], advance[c] = 1, mask.shape[1] + 2
        masks[c] = mask
    return GlyphSet(masks, offset, advance, row1 - row0)
