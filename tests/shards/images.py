"""Images made in memory for tests: real encoders, known content, no files needed."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def gradient(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth RGB image with structure at every scale, distinct per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    freq = rng.uniform(2, 6, size=3)
    phase = rng.uniform(0, 6.28, size=3)
    channels = [
        127 + 120 * np.sin(freq[c] * (x / width) * 6.28 + phase[c]) * np.cos(freq[(c + 1) % 3] * (y / height) * 3.14)
        for c in range(3)
    ]
    return Image.fromarray(np.stack(channels, -1).clip(0, 255).astype(np.uint8))


def blotches(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth random RGB image with grain. Unlike `gradient`, the pHashes of different seeds
    lie far apart (at least 20 of 64 bits over the first 40 seeds), so near-duplicate tests can
    use them as distinct photos."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8))
    base = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), np.float32)
    grain = rng.normal(0, 6, size=(height, width, 3))
    return Image.fromarray(np.clip(base + grain, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str = "JPEG", orientation: int | None = None, **params) -> bytes:
    buffer = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        params["exif"] = exif.tobytes()
    if fmt == "JPEG":
        params.setdefault("quality", 90)
    image.save(buffer, fmt, **params)
    return buffer.getvalue()
