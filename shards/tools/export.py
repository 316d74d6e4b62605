"""Writing one stored sample out as an image file, safely.

A dataset is untrusted input: nothing in it may choose where a file lands or what it is called
(a json naming `conftest.py` once replaced a test file). The name comes from the key the user
asked for and the index's extension, which must be an image type; the resolved path is checked
to stay in the requested folder, and the write itself never follows a symlink (plumbing.atomic).
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps

from plumbing.atomic import atomic_write
from plumbing.errors import DatasetError
from shards.format.limits import Limits
from shards.format.reader import Sample
from shards.format.schema import check_ext, check_key
from shards.intake.probe import EXTENSIONS, ProbeError, check_decode_cost

IMAGE_EXTENSIONS = frozenset(EXTENSIONS.values())


def output_path(output: Path, key: str, ext: str) -> Path:
    if not output.is_dir():
        return output
    if check_ext(ext) not in IMAGE_EXTENSIONS:
        raise DatasetError(f"refusing to name a file .{ext}: not an image type ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    name = f"{check_key(key)}.{ext}"
    path = (output / name).resolve()
    if path.parent != output.resolve():
        raise DatasetError(f"refusing to write {name!r} outside {output}")
    return path


def write_sample_image(sample: Sample, output: Path, key: str, ext: str, apply_orientation: bool = False,
                       limits: Limits | None = None) -> Path:
    if sample.meta.key != key or sample.meta.ext != ext:
        raise DatasetError(f"sample {key!r}: its json says {sample.meta.member_name}, the index {key}.{ext}")
    path = output_path(Path(output), key, ext)
    if not path.parent.is_dir():
        raise DatasetError(f"no such folder: {path.parent}")
    limits = limits or Limits.from_env()
    if not apply_orientation:
        atomic_write(path, sample.data)  # the stored bytes, untouched
        return path
    try:
        data = _oriented_bytes(sample.data, path, limits)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"sample {key} does not decode: {exc}") from None
    atomic_write(path, data)
    return path


def _oriented_bytes(data: bytes, path: Path, limits: Limits) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        try:
            check_decode_cost(image, data, limits.max_pixels, limits.max_jpeg_scans)
        except ProbeError as exc:
            raise DatasetError(str(exc)) from None
        oriented = ImageOps.exif_transpose(image)
        target_format = Image.registered_extensions().get(path.suffix.lower())
        if target_format is None:
            raise DatasetError(f"unknown image type for {path.name}; use .png or .jpg")
        if target_format == "JPEG" and oriented.mode not in ("RGB", "L", "CMYK"):
            oriented = oriented.convert("RGB")
        buffer = io.BytesIO()
        oriented.save(buffer, format=target_format, **({"quality": 95} if target_format == "JPEG" else {}))
    return buffer.getvalue()
