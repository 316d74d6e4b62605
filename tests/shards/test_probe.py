"""What `probe_image` says of good, odd and bad images."""

import io

import numpy as np
import pytest
from PIL import Image

from shards.intake.probe import ProbeError, probe_image
from tests.factories import encode, gradient


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_gives_the_displayed_size_and_the_same_phash(orientation):
    image = gradient(320, 200, seed=1)
    plain = probe_image(encode(image))
    # What a camera writes: pixels stored transposed, the tag saying how to show them.
    inverse = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
               6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}
    stored = image if inverse[orientation] is None else image.transpose(inverse[orientation])
    info = probe_image(encode(stored, orientation=orientation))
    assert (info.width, info.height, info.orientation) == (320, 200, orientation)
    distance = bin(int(info.phash, 16) ^ int(plain.phash, 16)).count("1")
    assert distance <= 4, f"orientation {orientation}: phash differs by {distance} bits"


@pytest.mark.parametrize(
    "mode, fmt, ext",
    [("RGB", "PNG", "png"), ("L", "JPEG", "jpg"), ("CMYK", "JPEG", "jpg"), ("RGBA", "PNG", "png"),
     ("P", "PNG", "png"), ("I;16", "PNG", "png"), ("RGB", "WEBP", "webp"), ("LA", "PNG", "png")],
)
def test_odd_modes_are_probed(mode, fmt, ext):
    image = gradient(96, 64)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 257)
    else:
        image = image.convert(mode)
    info = probe_image(encode(image, fmt))
    assert (info.width, info.height, info.ext, info.frames) == (96, 64, ext, 1)
    assert info.mode.startswith(mode.split(";")[0]) and len(info.phash) == 16


def test_hashes_and_sizes():
    data = encode(gradient(64, 48))
    info = probe_image(data)
    import hashlib

    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.nbytes == len(data)
    assert info.format == "jpeg"


def test_animated_gif_reports_its_frames():
    frames = [gradient(40, 30, seed=s).convert("P") for s in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert probe_image(buffer.getvalue()).frames == 3


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"<!doctype html><html><body>404</body></html>", "not-an-image"),
        (encode(gradient(200, 150))[:3000], "corrupt"),
        (encode(gradient(200, 150), "PNG")[:-200], "corrupt"),
    ],
)
def test_bad_bytes_give_a_reason(data, reason):
    with pytest.raises(ProbeError) as caught:
        probe_image(data)
    assert caught.value.reason == reason


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares a size its (absent) pixel data never delivers."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [30_000, 100_000])
def test_decompression_bomb_is_caught_from_the_header_alone(side):
    # Refused from the declared size, before any pixel is decoded (or memory allocated).
    data = png_declaring(side, side)
    with pytest.raises(ProbeError) as caught:
        probe_image(data, max_pixels=100_000_000)
    assert caught.value.reason == "decompression-bomb"
