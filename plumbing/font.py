"""The one font of every labelled picture: contact sheets, sample grids, patch previews."""

from __future__ import annotations

import functools

from PIL import ImageFont


@functools.lru_cache(maxsize=16)
def label_font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's default font at `size` px, loaded once per size."""
    return ImageFont.load_default(size=size)
