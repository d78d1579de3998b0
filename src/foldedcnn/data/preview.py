"""Preview grids: sections of images, each upscaled and captioned with its class, saved as one PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

Section = tuple[str, torch.Tensor, Sequence[str]]  # title, images uint8 (N, 3, H, W), one caption per image


def _grid(title: str, images: torch.Tensor, captions: Sequence[str], cols: int, scale: int):
    from PIL import Image, ImageDraw, ImageFont

    n, _, h, w = images.shape
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    font = ImageFont.load_default()
    tile_w, tile_h = max(w * scale, 40), h * scale + 12
    sheet = Image.new("RGB", (cols * (tile_w + 4) + 4, 16 + rows * (tile_h + 4)), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), title, fill=(255, 255, 255), font=font)
    pixels = images.permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, c = divmod(i, cols)
        x, y = 4 + c * (tile_w + 4), 16 + r * (tile_h + 4)
        sheet.paste(Image.fromarray(np.ascontiguousarray(pixels[i])).resize((w * scale, h * scale), Image.NEAREST),
                    (x, y))
        draw.text((x, y + h * scale), str(captions[i])[:12], fill=(255, 255, 0), font=font)
    return sheet


def save_preview(sections: Sequence[Section], path: str | Path, *, cols: int = 10, scale: int = 3) -> Path:
    """Save sections (title, images (N, 3, H, W) uint8, captions) stacked top to bottom as a PNG; returns the path."""
    from PIL import Image

    grids = [_grid(t, x, c, cols, scale) for t, x, c in sections]
    sheet = Image.new("RGB", (max(g.width for g in grids), sum(g.height for g in grids)), (40, 40, 40))
    y = 0
    for g in grids:
        sheet.paste(g, (0, y))
        y += g.height
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
