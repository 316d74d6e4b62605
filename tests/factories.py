"""The one place tests make images and datasets: real encoders, known content, written through
the real `shards` writer with metadata probed as the folder source would admit it.

Every test folder imports from here (`from tests.factories import ...`); fixtures live in
conftest.py files and are never imported by name.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from shards import DatasetWriter, SampleMeta, WriterConfig
from shards.format.writer import DEFAULT_SHARD_BYTES
from shards.intake.probe import probe_image

# Images -------------------------------------------------------------------------------------


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


def textured(width: int, height: int, seed: int) -> Image.Image:
    """Smooth structure plus fine detail: what makes reduced decoding and resampling differ."""
    base = np.asarray(gradient(width, height, seed)).astype(np.float32)
    rng = np.random.default_rng(seed)
    small = rng.uniform(-40, 40, size=(height // 4 + 1, width // 4 + 1, 3)).astype(np.float32)
    detail = np.asarray(Image.fromarray(small[..., 0]).resize((width, height), Image.Resampling.BICUBIC))
    return Image.fromarray((base + detail[..., None]).clip(0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str = "JPEG", orientation: int | None = None, **params) -> bytes:
    """`image` as a file's bytes in Pillow format `fmt`, with an EXIF orientation if given."""
    buffer = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        params["exif"] = exif.tobytes()
    if fmt == "JPEG":
        params.setdefault("quality", 90)
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


# Samples and datasets -----------------------------------------------------------------------


def meta_for(data: bytes, source_id: str) -> SampleMeta:
    """The record the folder source gives a file: key from its relative path, probed facts."""
    info = probe_image(data)
    return SampleMeta(
        key="file-" + hashlib.sha1(source_id.encode()).hexdigest()[:20], width=info.width, height=info.height,
        orientation=info.orientation, format=info.format, ext=info.ext, mode=info.mode, nbytes=info.nbytes,
        sha256=info.sha256, phash=info.phash, source="folder", source_id=source_id,
    )


def make_sample(i: int, width: int, height: int, fmt: str = "jpeg") -> tuple[SampleMeta, bytes]:
    """Sample `i`: a `gradient` image stored as photos/img-i.EXT."""
    data = encode(gradient(width, height, seed=i), fmt.upper())
    return meta_for(data, f"photos/img-{i:04d}.{probe_image(data).ext}"), data


def write_dataset(root: str | Path, blobs: Sequence[bytes], max_shard_bytes: int = 10**9,
                  name: str | None = None) -> list[SampleMeta]:
    """A dataset of these files, sample i named img-i; returns the records written."""
    metas = [meta_for(data, f"img-{i:04d}") for i, data in enumerate(blobs)]
    with DatasetWriter(root, WriterConfig(max_shard_bytes=max_shard_bytes, name=name)) as writer:
        for meta, data in zip(metas, blobs):
            writer.add(meta, data)
        writer.finalize(curation={"tool": "tests"})
    return metas


def small_dataset(root: str | Path, n: int, size: tuple[int, int] = (64, 48), fmt: str = "PNG",
                  max_shard_bytes: int = 10**9) -> list[SampleMeta]:
    """n `gradient` images of one size and format."""
    return write_dataset(root, [encode(gradient(*size, seed=i), fmt) for i in range(n)], max_shard_bytes)


DEFAULT_SIZES = ((64, 48), (40, 72), (96, 96))
DEFAULT_FORMATS = ("JPEG", "PNG")  # Pillow format names


def make_dataset(root: str | Path, n: int = 6, max_shard_bytes: int = DEFAULT_SHARD_BYTES,
                 sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES, formats: Sequence[str] = DEFAULT_FORMATS,
                 name: str | None = None) -> dict[str, Any]:
    """`n` samples of mixed sizes and formats (sample i: sizes[i % len], formats[i % len]),
    as `make_sample` names them. Returns the manifest."""
    with DatasetWriter(root, WriterConfig(max_shard_bytes=max_shard_bytes, name=name)) as writer:
        for i in range(n):
            width, height = sizes[i % len(sizes)]
            writer.add(*make_sample(i, width, height, formats[i % len(formats)]))
        return writer.finalize(curation={"tool": "tests"})
