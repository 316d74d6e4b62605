"""What a stored image is: decoded size after EXIF orientation, format, mode, hashes.

Curation computes these once when it admits an image; `verify --deep` recomputes them with the
same function and compares. Decoding uses JPEG's reduced-size DCT (Pillow's draft mode): the
whole entropy-coded stream is still parsed, so truncation is caught, at a fraction of the cost.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import imagehash
from PIL import Image, ImageOps

from plumbing.errors import UserError
from shards.format.schema import ImageFacts

DEFAULT_MAX_PIXELS = 200_000_000
# Each scan of a progressive JPEG is a full pass over the image: thousands of tiny scans make
# one small file cost minutes to decode. Real encoders write about 10 (mozjpeg up to ~20).
DEFAULT_MAX_JPEG_SCANS = 100
ORIENTATION_TAG = 0x0112
# Orientations 5..8 rotate by 90 degrees: the displayed size swaps width and height.
TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)
EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "TIFF": "tif", "BMP": "bmp"}
HASH_DECODE_SIDE = 256  # smallest side decoded for hashing; phash itself works at 32x32


class ProbeError(UserError, ValueError):
    """An image that cannot be admitted; `reason` is a short machine-readable tag."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageInfo(ImageFacts):
    frames: int  # admission rejects animations; a camera MPO's extra frames are kept


@dataclass(frozen=True)
class Decoded:
    """What probing decoded, for callers that derive more from it (curation's dedup
    signature): the facts, the oriented image at the reduced hashing size, and a JPEG's
    quantisation tables (None for other formats)."""

    info: ImageInfo
    image: Image.Image
    quantization: dict[int, list[int]] | None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block must not make a good image unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def jpeg_scans(data: bytes) -> int:
    """Start-of-scan markers of a JPEG, found by walking its segments (so an embedded EXIF
    thumbnail is not counted); stops at the end of the image or of the data."""
    scans, i, n = 0, 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return scans  # not a marker where one must be: the decoder will say what is wrong
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # end of image
            return scans
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:
            scans += 1
            # Entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a restart.
            while True:
                i = data.find(b"\xff", i)
                if i < 0 or i + 1 >= n:
                    return scans
                if data[i + 1] == 0 or 0xD0 <= data[i + 1] <= 0xD7:
                    i += 2
                    continue
                break
    return scans


def check_decode_cost(image: Image.Image, data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                      max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS) -> None:
    """Refuse, before decoding, an image whose decode would cost more than the bounds allow:
    more stored pixels than `max_pixels`, or a progressive JPEG of too many scans."""
    width, height = image.size
    if width * height > max_pixels:
        raise ProbeError("decompression-bomb", f"{width}x{height} exceeds {max_pixels} pixels")
    if image.format in ("JPEG", "MPO") and (scans := jpeg_scans(data)) > max_jpeg_scans:
        raise ProbeError("too-many-scans", f"progressive JPEG of {scans} scans, over the bound of {max_jpeg_scans}")


def probe_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS) -> ImageInfo:
    return decode_image(data, max_pixels, max_jpeg_scans).info


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS) -> Decoded:
    if not data:
        raise ProbeError("empty", "zero bytes")
    with warnings.catch_warnings():
        # Pillow warns, then raises, on huge images; the guard below gives the reason instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ProbeError("decompression-bomb", str(exc)) from None
        except Exception as exc:
            raise ProbeError("not-an-image", f"{type(exc).__name__}: {exc}") from None
        with image:
            return _inspect(image, data, max_pixels, max_jpeg_scans)


def _inspect(image: Image.Image, data: bytes, max_pixels: int, max_jpeg_scans: int) -> Decoded:
    fmt = image.format or ""
    if fmt not in EXTENSIONS:
        raise ProbeError("unsupported-format", f"format {fmt or 'unknown'} is not stored")
    stored_w, stored_h = image.size
    check_decode_cost(image, data, max_pixels, max_jpeg_scans)
    mode = image.mode
    frames = getattr(image, "n_frames", 1)
    if fmt == "JPEG":
        scale = max(1, min(stored_w, stored_h) // HASH_DECODE_SIDE)
        image.draft("RGB" if mode == "RGB" else mode, (stored_w // scale, stored_h // scale))
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise ProbeError("decompression-bomb", str(exc)) from None
    except Exception as exc:
        raise ProbeError("corrupt", f"{type(exc).__name__}: {exc}") from None
    # Read after the full decode: for a PNG, getexif() itself decodes the image data, and the
    # guarded read below would otherwise swallow a decode error as "no orientation".
    orientation = read_orientation(image)
    oriented = ImageOps.exif_transpose(image) if orientation != 1 else image
    width, height = (stored_h, stored_w) if orientation in TRANSPOSED_ORIENTATIONS else (stored_w, stored_h)
    info = ImageInfo(
        width=width,
        height=height,
        orientation=orientation,
        format=fmt.lower() if fmt != "MPO" else "jpeg",
        ext=EXTENSIONS[fmt],
        mode=mode,
        frames=frames,
        nbytes=len(data),
        sha256=sha256_hex(data),
        phash=perceptual_hash(oriented),
    )
    tables = getattr(image, "quantization", None) if fmt in ("JPEG", "MPO") else None
    return Decoded(info, oriented, dict(tables) if tables else None)


def perceptual_hash(image: Image.Image) -> str:
    if image.mode not in ("L", "RGB"):
        # Flatten alpha onto white and map odd modes (CMYK, I;16, P) to something phash reads.
        image = _to_rgb(image)
    return str(imagehash.phash(image))


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode.startswith("I;16") or image.mode == "I":
        return image.point(lambda v: v / 256).convert("L")
    return image.convert("RGB")
