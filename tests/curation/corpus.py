"""Test images for curation: photo-derived where ../shared/photos exists, generated otherwise
(the assertions hold for both), and every bad case the pipeline must turn into a reject."""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from tests.factories import blotches, encode

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "photos"

# What a camera writes for each EXIF orientation: pixels stored so that applying the tag
# shows the upright image.
STORED = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
          5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_270}


@cache
def _photo_list() -> tuple[Path, ...]:
    return tuple(sorted(PHOTOS.glob("*.jpg"))) if PHOTOS.is_dir() else ()


def photo(i: int, width: int = 480, height: int = 320) -> Image.Image:
    """An RGB image of exactly width x height: a crop of real photo i % 15 when the photos are
    there, a distinct generated gradient otherwise."""
    photos = _photo_list()
    if not photos:
        return blotches(width, height, seed=i)
    with Image.open(photos[i % len(photos)]) as im:
        im.draft("RGB", (width * 2, height * 2))
        im = im.convert("RGB")
    scale = max(width / im.width, height / im.height) * (1 + (i // len(photos)) * 0.15)
    im = im.resize((max(width, round(im.width * scale)), max(height, round(im.height * scale))))
    return im.crop((0, 0, width, height))


def jpeg(i: int, width: int = 480, height: int = 320, **kw) -> bytes:
    return encode(photo(i, width, height), "JPEG", **kw)


def oriented(i: int, orientation: int, width: int = 480, height: int = 320) -> bytes:
    upright = photo(i, width, height)
    return encode(upright.transpose(STORED[orientation]), "JPEG", orientation=orientation)


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares a huge size: the bomb is in the header, not the bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def animated_gif() -> bytes:
    frames = [photo(s, 320, 300).convert("P") for s in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def rgba(i: int, opaque: bool) -> bytes:
    image = photo(i, 400, 300).convert("RGBA")
    if not opaque:
        alpha = np.full((300, 400), 255, np.uint8)
        alpha[:50, :50] = 0
        image.putalpha(Image.fromarray(alpha))
    return encode(image, "PNG")


def good_cases() -> dict[str, tuple[bytes, dict]]:
    """name -> (bytes, expected metadata) of images that must be kept."""
    cases = {f"photo-{i}.jpg": (jpeg(i), {"width": 480, "height": 320, "orientation": 1, "mode": "RGB"})
             for i in range(4)}
    for o in range(2, 9):
        # Stored transposed for 5..8; the displayed size is always the upright 480x320.
        cases[f"orient-{o}.jpg"] = (oriented(10 + o, o), {"width": 480, "height": 320, "orientation": o,
                                                         "mode": "RGB"})
    cases["grey.jpg"] = (encode(photo(30, 300, 400).convert("L"), "JPEG"),
                         {"width": 300, "height": 400, "mode": "L", "format": "jpeg"})
    cases["photo.png"] = (encode(photo(31, 320, 320), "PNG"), {"width": 320, "height": 320, "mode": "RGB",
                                                                "format": "png"})
    cases["photo.webp"] = (encode(photo(32, 400, 300), "WEBP"), {"width": 400, "height": 300, "format": "webp"})
    cases["opaque-alpha.png"] = (rgba(33, opaque=True), {"width": 400, "height": 300, "mode": "RGBA"})
    sixteen = np.asarray(photo(34, 320, 280), dtype=np.uint16) * 257
    cases["rgb16.png"] = (_png16_rgb(sixteen), {"width": 320, "height": 280, "mode": "RGB"})
    return cases


def _png16_rgb(pixels: np.ndarray) -> bytes:
    """A 48-bit RGB PNG (Pillow cannot write one): Pillow reads it back as 8-bit RGB."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    h, w, _ = pixels.shape
    raw = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def bad_files() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, reject reason) of files that are served or stored but must not be kept."""
    good = jpeg(40, 640, 480)
    png = encode(photo(41, 400, 300), "PNG")
    sixteen_grey = Image.fromarray(np.asarray(photo(42, 300, 300).convert("L"), dtype=np.uint16) * 257)
    return {
        "truncated.jpg": (good[: len(good) // 2], "corrupt"),
        "truncated.png": (png[:-300], "corrupt"),
        "zero.jpg": (b"", "empty"),
        "page.jpg": (b"<!doctype html><html><body>Not found</body></html>", "not-an-image"),
        "notes.png": (b"just some text, not an image at all\n" * 20, "not-an-image"),
        "bomb.png": (png_declaring(100_000, 100_000), "decompression-bomb"),
        "cmyk.jpg": (encode(photo(43, 400, 300).convert("CMYK"), "JPEG"), "unsupported-mode"),
        "grey16.png": (encode(sixteen_grey, "PNG"), "unsupported-mode"),
        "palette.png": (encode(photo(44, 400, 300).convert("P"), "PNG"), "unsupported-mode"),
        "transparent.png": (rgba(45, opaque=False), "transparent"),
        "animated.gif": (animated_gif(), "animated"),
        "tiny.jpg": (jpeg(46, 200, 150), "too-small"),
    }
