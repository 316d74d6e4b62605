"""A new dataset from some rows of another: the way to make a high-resolution subset, or to
reshard with another shard size. Image bytes and metadata are copied untouched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from plumbing.errors import DatasetError
from shards.format.index import IndexFilter
from shards.format.reader import Dataset
from shards.format.writer import DatasetWriter, WriterConfig


def write_subset(
    parent: Dataset,
    out: str | Path,
    where: IndexFilter = IndexFilter(),
    config: WriterConfig = WriterConfig(),
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    rows = parent.select(where)
    if rows.num_rows == 0:
        raise DatasetError(f"the filter {where.describe()} selects no samples of {parent.url}")
    if Path(out).absolute() == Path(parent.loc.root) and parent.loc.is_local:
        raise DatasetError("the subset must go to another folder than its source")
    with DatasetWriter(out, config) as writer:
        for sample in parent.iter_selected(rows):
            writer.add(sample.meta, sample.data)
            if progress:
                progress(1)
        return writer.finalize(
            curation=parent.manifest.get("curation", {}),
            derived_from={
                "dataset": parent.url,
                "name": parent.manifest.get("name"),
                "num_samples": len(parent),
                "filter": where.describe(),
            },
        )
