"""Small real datasets for the shards tests: generated JPEG and PNG images, probed like curation does.

Test modules here use `from .conftest import make_dataset`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shards import DatasetWriter, SampleMeta, WriterConfig
from shards.format.writer import DEFAULT_SHARD_BYTES
from shards.intake.probe import probe_image

from .images import encode, gradient

DEFAULT_SIZES = ((64, 48), (40, 72), (96, 96))
DEFAULT_FORMATS = ("JPEG", "PNG")  # Pillow format names


def make_sample(i: int, width: int, height: int, fmt: str = "jpeg") -> tuple[SampleMeta, bytes]:
    """Sample `i` as the folder source would admit it: key from the relative path, probed metadata."""
    data = encode(gradient(width, height, seed=i), fmt.upper())
    info = probe_image(data)
    source_id = f"photos/img-{i:04d}.{info.ext}"
    meta = SampleMeta(
        key="file-" + hashlib.sha1(source_id.encode()).hexdigest()[:20],
        width=info.width, height=info.height, orientation=info.orientation, format=info.format,
        ext=info.ext, mode=info.mode, nbytes=info.nbytes, sha256=info.sha256, phash=info.phash,
        source="folder", source_id=source_id,
    )
    return meta, data


def make_dataset(
    root: str | Path,
    n: int = 6,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    formats: Sequence[str] = DEFAULT_FORMATS,
    name: str | None = None,
) -> dict[str, Any]:
    """Write `n` samples to a new dataset at `root`; sample i has size sizes[i % len(sizes)] and
    format formats[i % len(formats)]. Returns the manifest."""
    config = WriterConfig(max_shard_bytes=max_shard_bytes, name=name)
    with DatasetWriter(root, config) as writer:
        for i in range(n):
            width, height = sizes[i % len(sizes)]
            writer.add(*make_sample(i, width, height, formats[i % len(formats)]))
        return writer.finalize(curation={"tool": "tests"})
