"""The crop-robust signature of one image, computed once at fetch and stored per sample.

A global pHash moves when a copy is cropped by a few percent or carries a watermark, so the
signature hashes several windows of the image as well as the whole (`WINDOWS`, margins as
fractions of the displayed width and height). A copy cropped by up to about 6% per side hashes
like one of the original's inset windows (`INSETS`), and a copy with an overlay in a corner or
along an edge still shares a window that leaves that band out (`BANDS`). A small grey
thumbnail of the whole image lets the dedup stage check a candidate pair by aligning one image
inside the other (`alignment.py`). And a JPEG's quality, estimated from its quantisation tables,
tells the keeper rule which of two equal-sized copies is the better one.

Stored bytes per sample: 8 hashes (64 bytes), the 32 x 32 thumbnail (1,024) and the quality
(2). Every window is hashed the same way: the image squashed to a 128 x 128 grey base, the
window cut out and area-resized to 32 x 32, the 8 x 8 lowest DCT frequencies thresholded at
their median (the pHash recipe).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pyarrow as pa
from PIL import Image
from scipy.fft import dctn

INSET = 0.04  # margin of the inset windows: with the full frame, covers crops of 0 to ~6% per side
BAND = 0.15  # the edge band an overlay window leaves out
# name -> (left, top, right, bottom) margins
WINDOWS = {
    "full": (0.0, 0.0, 0.0, 0.0),
    "inset": (INSET, INSET, INSET, INSET),
    "inset-left-top": (INSET, INSET, 0.0, 0.0),
    "inset-right-top": (0.0, INSET, INSET, 0.0),
    "inset-left-bottom": (INSET, 0.0, 0.0, INSET),
    "inset-right-bottom": (0.0, 0.0, INSET, INSET),
    "above-bottom-band": (0.0, 0.0, 0.0, BAND),
    "below-top-band": (0.0, BAND, 0.0, 0.0),
}
NAMES = tuple(WINDOWS)
FULL = NAMES.index("full")
INSETS = tuple(i for i, n in enumerate(NAMES) if n.startswith("inset"))
BANDS = tuple(i for i, n in enumerate(NAMES) if n.endswith("band"))
BASE_SIDE = 128
HASH_SIDE = 32
THUMB_SIDE = 32
SIGNATURE_BYTES = 8 * len(WINDOWS) + THUMB_SIDE**2 + 2

# The IJG reference luminance table (quality 50); encoders scale it by quality.
_IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])

SCHEMA = pa.schema([("key", pa.string()), ("windows", pa.binary(8 * len(WINDOWS))),
                    ("thumb", pa.binary(THUMB_SIDE**2)), ("quality", pa.int16())])


@dataclass(frozen=True)
class Signature:
    windows: bytes  # len(WINDOWS) little-endian uint64 hashes, in NAMES order
    thumb: bytes  # THUMB_SIDE x THUMB_SIDE grey, row-major
    quality: int | None  # estimated JPEG quality 1..100; None for other formats

    def record(self, key: str) -> dict:
        return {"key": key, "windows": self.windows, "thumb": self.thumb, "quality": self.quality}


def signature(image: Image.Image, quantization: dict[int, list[int]] | None = None) -> Signature:
    """The signature of an oriented image (any mode a probe admits, any size)."""
    base = grey_base(image)
    hashes = np.array([window_hash(base, margins) for margins in WINDOWS.values()], dtype="<u8")
    thumb = cv2.resize(base, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)
    return Signature(hashes.tobytes(), np.clip(np.rint(thumb), 0, 255).astype(np.uint8).tobytes(),
                     jpeg_quality(quantization))


def grey_base(image: Image.Image) -> np.ndarray:
    short = min(image.size)
    if short > 4 * BASE_SIDE:  # a full-size PNG: Pillow's box reduce first, cheaply
        image = image.reduce(short // (2 * BASE_SIDE))
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    return cv2.resize(grey, (BASE_SIDE, BASE_SIDE), interpolation=cv2.INTER_AREA)


def window_hash(base: np.ndarray, margins: tuple[float, float, float, float]) -> int:
    left, top, right, bottom = (round(m * BASE_SIDE) for m in margins)
    window = base[top:BASE_SIDE - bottom, left:BASE_SIDE - right]
    small = cv2.resize(window, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA)
    low = dctn(small, norm="ortho")[:8, :8].ravel()
    bits = np.packbits(low > np.median(low))
    return int.from_bytes(bits.tobytes(), "big")


def jpeg_quality(quantization: dict[int, list[int]] | None) -> int | None:
    """The IJG quality whose scaled luminance table is closest to this one (order-free: the
    sum of the table), or None without tables. Encoders with their own tables (some cameras,
    mozjpeg) get the IJG quality of the same overall coarseness, which still ranks them."""
    if not quantization or 0 not in quantization or len(quantization[0]) != 64:
        return None
    total = float(np.sum(quantization[0]))
    quality = np.arange(1, 101)
    scale = np.where(quality < 50, 5000 / quality, 200 - 2 * quality)
    tables = np.clip((_IJG_LUMA[None, :] * scale[:, None] + 50) // 100, 1, 255)
    return int(quality[np.argmin(np.abs(tables.sum(axis=1) - total))])


def hashes_of(column: pa.Array) -> np.ndarray:
    """(n, len(WINDOWS)) uint64 hashes of a `windows` column without nulls."""
    flat = np.frombuffer(column.buffers()[1], dtype="<u8", offset=0)
    start = column.offset * len(WINDOWS)
    return flat[start:start + len(column) * len(WINDOWS)].reshape(len(column), len(WINDOWS)).astype(np.uint64)


def thumbs_of(column: pa.Array) -> np.ndarray:
    """(n, THUMB_SIDE, THUMB_SIDE) uint8 thumbnails of a `thumb` column without nulls."""
    size = THUMB_SIDE**2
    flat = np.frombuffer(column.buffers()[1], dtype=np.uint8)
    start = column.offset * size
    return flat[start:start + len(column) * size].reshape(len(column), THUMB_SIDE, THUMB_SIDE)
