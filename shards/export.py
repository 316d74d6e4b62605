"""Writing one stored sample out as an image file, safely.

A shard is untrusted input: a member name such as `../../x.jpg` must never choose where a file
lands. The output name comes from the validated key and extension, and the resolved path is
checked to stay in the requested folder.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps

from .atomic import atomic_write
from .errors import DatasetError
from .reader import Sample
from .schema import check_ext, check_key


def output_path(sample: Sample, output: Path) -> Path:
    if not output.is_dir():
        return output
    name = f"{check_key(sample.meta.key)}.{check_ext(sample.meta.ext)}"
    path = (output / name).resolve()
    if path.parent != output.resolve():
        raise DatasetError(f"refusing to write {name!r} outside {output}")
    return path


def write_sample_image(sample: Sample, output: Path, apply_orientation: bool = False) -> Path:
    path = output_path(sample, Path(output))
    if not path.parent.is_dir():
        raise DatasetError(f"no such folder: {path.parent}")
    if not apply_orientation:
        atomic_write(path, sample.data)  # the stored bytes, untouched
        return path
    with Image.open(io.BytesIO(sample.data)) as image:
        oriented = ImageOps.exif_transpose(image)
        target_format = Image.registered_extensions().get(path.suffix.lower())
        if target_format is None:
            raise DatasetError(f"unknown image type for {path.name}; use .png or .jpg")
        if target_format == "JPEG" and oriented.mode not in ("RGB", "L", "CMYK"):
            oriented = oriented.convert("RGB")
        buffer = io.BytesIO()
        oriented.save(buffer, format=target_format, **({"quality": 95} if target_format == "JPEG" else {}))
    atomic_write(path, buffer.getvalue())
    return path
