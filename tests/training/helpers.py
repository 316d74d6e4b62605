"""Datasets for the loader tests: images whose pixels say where they are, stored with any EXIF
orientation, and plain photo-like images; written through the real `shards` writer."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from shards import DatasetWriter, SampleMeta, WriterConfig
from shards.intake.probe import probe_image
from training.loader.decode import ORIENT_OPS

from ..shards.images import encode, gradient

# Undoing an EXIF orientation: what a camera stores so that a reader applying the tag shows `display`.
INVERSE_OPS = {o: ORIENT_OPS[{6: 8, 8: 6}.get(o, o)] for o in ORIENT_OPS}


def coordinate_image(width: int, height: int) -> Image.Image:
    """Display pixel (x, y) holds R = x, G = y (so its centre x + 0.5 = R + 0.5); needs sides <= 256."""
    assert width <= 256 and height <= 256
    y, x = np.mgrid[0:height, 0:width]
    return Image.fromarray(np.stack([x, y, np.full_like(x, 128)], -1).astype(np.uint8))


def stored_for(display: Image.Image, orientation: int) -> Image.Image:
    return display if orientation == 1 else display.transpose(INVERSE_OPS[orientation])


def textured(width: int, height: int, seed: int) -> Image.Image:
    """Smooth structure plus fine detail: what makes reduced decoding and resampling differ."""
    base = np.asarray(gradient(width, height, seed)).astype(np.float32)
    rng = np.random.default_rng(seed)
    small = rng.uniform(-40, 40, size=(height // 4 + 1, width // 4 + 1, 3)).astype(np.float32)
    detail = np.asarray(Image.fromarray(small[..., 0]).resize((width, height), Image.Resampling.BICUBIC))
    return Image.fromarray((base + detail[..., None]).clip(0, 255).astype(np.uint8))


def meta_for(data: bytes, name: str) -> SampleMeta:
    info = probe_image(data)
    return SampleMeta(
        key="file-" + hashlib.sha1(name.encode()).hexdigest()[:20], width=info.width, height=info.height,
        orientation=info.orientation, format=info.format, ext=info.ext, mode=info.mode, nbytes=info.nbytes,
        sha256=info.sha256, phash=info.phash, source="folder", source_id=name,
    )


def write_dataset(root: Path, blobs: Sequence[bytes], max_shard_bytes: int = 10**9) -> list[SampleMeta]:
    metas = [meta_for(data, f"img-{i:04d}") for i, data in enumerate(blobs)]
    with DatasetWriter(root, WriterConfig(max_shard_bytes=max_shard_bytes)) as writer:
        for meta, data in zip(metas, blobs):
            writer.add(meta, data)
        writer.finalize(curation={"tool": "tests"})
    return metas


def small_dataset(root: Path, n: int, size: tuple[int, int] = (64, 48), fmt: str = "PNG",
                  max_shard_bytes: int = 10**9) -> list[SampleMeta]:
    return write_dataset(root, [encode(gradient(*size, seed=i), fmt) for i in range(n)], max_shard_bytes)
