"""An image from a stream of row bands, and the JSON sidecar that says how it was made.

PNG is encoded as the rows arrive (png.py): host memory stays a band. JPEG and WebP have no
such encoder in Pillow, so their image is assembled whole in a Pillow image (4 bytes a pixel)
and encoded at the end; the CLI caps their size accordingly. Every file appears under its name
only when complete (plumbing.atomic).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

from plumbing.atomic import (
    atomic_write_json,
    atomic_write_with,
    finish,
    open_exclusive,
    tmp_path,
)
from plumbing.digest import file_sha256

from .png import PngStream

FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
EXTENSIONS = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp"}
SAVE_OPTIONS = {"jpg": {"format": "JPEG", "quality": 95, "subsampling": 0},
                "webp": {"format": "WEBP", "quality": 95, "method": 4}}


def write_png(path: Path, width: int, height: int, rows: Iterable[np.ndarray]) -> None:
    tmp = tmp_path(path)
    file = open_exclusive(tmp)
    try:
        png = PngStream(file, width, height)
        for band in rows:
            png.write(band)
        png.close()
        finish(file, tmp, path)
    except BaseException:  # an interrupted render leaves no partial image behind, not even the .tmp
        file.close()
        tmp.unlink(missing_ok=True)
        raise


def write_pillow(path: Path, fmt: str, width: int, height: int, rows: Iterable[np.ndarray]) -> None:
    image = Image.new("RGB", (width, height))
    y = 0
    for band in rows:
        image.paste(Image.fromarray(band), (0, y))
        y += band.shape[0]
    atomic_write_with(path, lambda sink: image.save(sink, **SAVE_OPTIONS[fmt]))


def write_image(path: Path, fmt: str, width: int, height: int, rows: Iterable[np.ndarray]) -> None:
    if fmt == "png":
        write_png(path, width, height, rows)
    else:
        write_pillow(path, fmt, width, height, rows)


def file_digest(path: Path) -> dict:
    """Name, size and sha256 of a file (the snapshot), read in blocks."""
    return {"path": str(Path(path).resolve()), "name": Path(path).name, "bytes": Path(path).stat().st_size,
            "sha256": file_sha256(path)}


def anyres_version() -> str:
    try:
        return metadata.version("anyres")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def write_sidecar(path: Path, record: dict) -> None:
    atomic_write_json(path, record, end="\n", indent=2)
