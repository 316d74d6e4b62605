"""Images for the loader tests whose pixels say where they are, stored with any EXIF orientation
(datasets and plain images come from tests.factories)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from training.loader.decode import ORIENT_OPS

# Undoing an EXIF orientation: what a camera stores so that a reader applying the tag shows `display`.
INVERSE_OPS = {o: ORIENT_OPS[{6: 8, 8: 6}.get(o, o)] for o in ORIENT_OPS}


def coordinate_image(width: int, height: int) -> Image.Image:
    """Display pixel (x, y) holds R = x, G = y (so its centre x + 0.5 = R + 0.5); needs sides <= 256."""
    assert width <= 256 and height <= 256
    y, x = np.mgrid[0:height, 0:width]
    return Image.fromarray(np.stack([x, y, np.full_like(x, 128)], -1).astype(np.uint8))


def stored_for(display: Image.Image, orientation: int) -> Image.Image:
    return display if orientation == 1 else display.transpose(INVERSE_OPS[orientation])
