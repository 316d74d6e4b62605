"""How a stored image's pixels are shown as 8-bit RGB: the one rule for every reader of a
dataset (contact sheets, exports' previews, the training loader).

Stored images are kept untouched, in any mode Pillow reads. Shown:
- 16-bit (I;16*) scales by 1/257, so 65535 is 255; 32-bit integer and float images carry
  16-bit data in practice and scale the same when they exceed 255;
- alpha is flattened on neutral grey (neither white nor black hides a transparent image);
- every other mode goes through Pillow's own conversion.
The perceptual hash keeps its own, older rule (shards.intake.probe): stored hashes depend on it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

FLATTEN_ON = (128, 128, 128)
SIXTEEN_TO_EIGHT = 257  # 65535 / 255
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` as 8-bit RGB by the rule above (the same object when it already is RGB)."""
    if image.mode == "RGB":
        return image
    if image.mode in ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*FLATTEN_ON, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        # Pillow cannot convert these to RGB without clipping at 255.
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values / SIXTEEN_TO_EIGHT
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")
