"""A PNG written a band of rows at a time (RGB, 8 bits), for images too large to hold whole.

Pillow encodes only whole images in memory; PNG itself is a zlib stream of filtered rows, so
rows can be filtered and compressed as they arrive, and each compressed piece written out as an
IDAT chunk. Rows use the Sub filter (each byte minus the one a pixel to the left), which a
numpy subtraction computes for a whole band and which compresses rendered images well.
"""

from __future__ import annotations

import struct
import zlib
from typing import IO

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
SUB = 1  # PNG filter type
LEVEL = 6  # zlib's default: most of level 9's ratio at a fraction of its time


class PngStream:
    def __init__(self, file: IO[bytes], width: int, height: int, level: int = LEVEL):
        self.file, self.width, self.height = file, width, height
        self.written = 0
        self.zlib = zlib.compressobj(level)
        file.write(SIGNATURE)
        # Width, height, bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self.file.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))

    def write(self, rows: np.ndarray) -> None:
        """rows: (h, width, 3) uint8, the next h rows of the image."""
        h = rows.shape[0]
        if rows.shape[1:] != (self.width, 3) or rows.dtype != np.uint8 or self.written + h > self.height:
            raise ValueError(f"rows of shape {rows.shape} do not continue a {self.width} x {self.height} RGB image")
        flat = rows.reshape(h, -1)
        band = np.empty((h, 1 + flat.shape[1]), np.uint8)
        band[:, 0] = SUB
        band[:, 1:4] = flat[:, :3]
        np.subtract(flat[:, 3:], flat[:, :-3], out=band[:, 4:])  # uint8: wraps modulo 256, as PNG wants
        data = self.zlib.compress(band)
        if data:
            self._chunk(b"IDAT", data)
        self.written += h

    def close(self) -> None:
        if self.written != self.height:
            raise ValueError(f"{self.written} of {self.height} rows were written")
        self._chunk(b"IDAT", self.zlib.flush())
        self._chunk(b"IEND", b"")
