"""The last step: copy the kept samples from staging into the final shards, bytes untouched,
with each merged duplicate recorded in its keeper's json, then the index and the manifest.

Samples go in input order, so the same input gives the same shards. Reading the staging tars
front to back and appending is all the I/O; the decisions were made on metadata before.
"""

from __future__ import annotations

import dataclasses
import io
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shards import Dataset, DatasetWriter, WriterConfig
from shards.atomic import atomic_write
from shards.pack import REJECTS_NAME

from .dedup import Merge, Place, places
from .fetch import SLICE_REJECTS, slice_dir
from .items import REJECTS_SCHEMA

DEDUP_NAME = "work/dedup.parquet"


def read_staging(work: Path, numbers: list[int]) -> tuple[pa.Table, pa.Table]:
    """Kept metadata (index rows with `slice` and `row`) and rejects of finished slices."""
    kept, rejects = [], []
    for number in numbers:
        folder = slice_dir(work, number)
        index = pq.read_table(folder / "index.parquet").drop_columns(["shard", "offset"])
        kept.append(index.append_column("slice", pa.array([number] * index.num_rows, pa.int64()))
                    .append_column("row", pa.array(range(index.num_rows), pa.int64())))
        rejects.append(pq.read_table(folder / SLICE_REJECTS, schema=REJECTS_SCHEMA))
    kept_table = pa.concat_tables(kept) if kept else None
    return kept_table, pa.concat_tables(rejects) if rejects else REJECTS_SCHEMA.empty_table()


def final_rejects(kept: pa.Table, rejects: pa.Table, relabel: dict[int, str], merges: list[Merge]) -> pa.Table:
    reasons = rejects["reason"].to_pylist()
    for i, reason in relabel.items():
        reasons[i] = reason
    details = rejects["detail"].to_pylist()
    for i in relabel:
        details[i] = "an earlier row has the same URL"
    table = rejects.set_column(1, "reason", pa.array(reasons, pa.string())).set_column(
        2, "detail", pa.array(details, pa.string()))
    if merges:
        row_of = {p: i for i, p in enumerate(places(kept))}
        dropped = kept.take([row_of[m.dropped] for m in merges])
        table = pa.concat_tables([table, pa.table({
            "source_id": dropped["source_id"], "reason": pa.array([m.reason for m in merges], pa.string()),
            "detail": pa.array([m.detail for m in merges], pa.string()), "key": dropped["key"],
            "source": dropped["source"], "position": pa.nulls(len(merges), pa.int64()),
        }, schema=REJECTS_SCHEMA)])
    return table


def write_parquet(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    atomic_write(path, sink.getvalue())


def absorbed(kept: pa.Table, merges: list[Merge]) -> dict[Place, list[dict[str, Any]]]:
    """For each surviving sample, the samples merged into it (following chains of merges)."""
    into = {m.dropped: m.kept for m in merges if m.kept is not None}
    row_of = {p: i for i, p in enumerate(places(kept))}
    records = kept.select(["key", "source", "source_id", "url", "width", "height"]).to_pylist()
    found: dict[Place, list[dict[str, Any]]] = defaultdict(list)
    for m in merges:
        # the same item listed twice has nothing new to record; an excluded one went nowhere
        if m.reason == "duplicate-url" or m.kept is None:
            continue
        keeper = m.kept
        while keeper in into:
            keeper = into[keeper]
        record = records[row_of[m.dropped]]
        found[keeper].append({**record, "reason": m.reason})
    return found


def pack(out: Path, work: Path, numbers: list[int], kept: pa.Table, merges: list[Merge],
         config: WriterConfig, curation: dict[str, Any], progress: Callable[[int], None] | None = None):
    gone = {m.dropped for m in merges}
    extra = absorbed(kept, merges) if kept is not None else {}
    with DatasetWriter(out, config) as writer:
        for number in numbers:
            staging = Dataset(str(slice_dir(work, number)))
            for row, sample in enumerate(staging.iter_samples()):
                place = (number, row)
                if place in gone:
                    continue
                meta = sample.meta
                if place in extra:
                    dups = extra[place]
                    meta = dataclasses.replace(meta, dup_count=len(dups), extra={**meta.extra, "duplicates": dups})
                writer.add(meta, sample.data)
                if progress:
                    progress(1)
        return writer.finalize(curation=curation)


def reject_counts(rejects: pa.Table) -> dict[str, int]:
    if rejects.num_rows == 0:
        return {}
    counts = pc.value_counts(rejects["reason"]).to_pylist()
    return dict(Counter({c["values"]: c["counts"] for c in counts}).most_common())


def write_work_records(out: Path, rejects: pa.Table, kept: pa.Table | None, merges: list[Merge]) -> None:
    write_parquet(out / REJECTS_NAME, rejects)
    if kept is None or not merges:
        table = pa.table({"key": pa.array([], pa.string()), "kept_key": pa.array([], pa.string()),
                          "reason": pa.array([], pa.string())})
    else:
        row_of = {p: i for i, p in enumerate(places(kept))}
        keys = kept["key"].to_pylist()
        table = pa.table({"key": [keys[row_of[m.dropped]] for m in merges],
                          "kept_key": pa.array([None if m.kept is None else keys[row_of[m.kept]] for m in merges],
                                               pa.string()),
                          "reason": [m.reason for m in merges]})
    write_parquet(out / DEDUP_NAME, table)
