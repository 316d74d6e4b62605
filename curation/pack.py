"""The last step: copy the kept samples from staging into the final shards, bytes untouched,
with each merged duplicate recorded in its keeper's json, then the index and the manifest.

Samples go in input order, so the same input gives the same shards. Reading the staging tars
front to back and appending is all the I/O; the decisions were made on metadata before.
"""

from __future__ import annotations

import dataclasses
import io
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from plumbing.atomic import atomic_write_parquet
from shards import Dataset, DatasetWriter, WriterConfig
from shards.format.reader import Sample
from shards.intake.pack import REJECTS_NAME

from . import signature_files
from .dedup import MergePlan, Place, places
from .items import REJECTS_SCHEMA
from .workdir import DEDUP_NAME, WorkDir

REPEAT_DETAIL = "an earlier row has the same URL"


def read_staging(work: WorkDir, numbers: Iterable[int]) -> tuple[pa.Table | None, pa.Table]:
    """Kept metadata (index rows with their signatures, `slice` and `row`) and rejects of
    finished slices. A slice staged before signatures were stored has null ones."""
    kept, rejects = [], []
    for number in numbers:
        found = signature_files.read(work.slice(number) / signature_files.SIGNATURES_NAME)
        kept.append(with_places(signature_files.attach(pq.read_table(work.slice_index(number)), found), number))
        rejects.append(pq.read_table(work.slice_rejects(number), schema=REJECTS_SCHEMA))
    return staged_table(kept) if kept else None, pa.concat_tables(rejects) if rejects else REJECTS_SCHEMA.empty_table()


def staged_table(slices: list[pa.Table]) -> pa.Table:
    """The slices' rows as one table in one chunk: the dedup stages take rows by position,
    and a take over one chunk per slice costs per chunk, which made planning grow as n²
    (bench/bench_scale.py plan)."""
    return pa.concat_tables(slices).combine_chunks()


def with_places(index: pa.Table, number: int) -> pa.Table:
    """Index rows as dedup sees them: metadata and their place, `(slice, row)`."""
    index = index.drop_columns(["shard", "offset"])
    return index.append_column("slice", pa.array([number] * index.num_rows, pa.int64())).append_column(
        "row", pa.array(range(index.num_rows), pa.int64()))


def final_rejects(rejects: pa.Table, relabel: dict[int, str], plan: MergePlan) -> pa.Table:
    """The fetch rejects, repeats relabelled, then the samples the merges dropped."""
    reasons = rejects["reason"].to_pylist()
    details = rejects["detail"].to_pylist()
    for i, reason in relabel.items():
        reasons[i], details[i] = reason, REPEAT_DETAIL
    table = rejects.set_column(1, "reason", pa.array(reasons, pa.string())).set_column(
        2, "detail", pa.array(details, pa.string()))
    return pa.concat_tables([table, plan.rejects()]) if plan.merges else table


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def write_records(out: Path, rejects: pa.Table, plan: MergePlan) -> None:
    """`work/rejects.parquet`, `work/dedup.parquet` and `work/signatures.parquet` of a new
    dataset."""
    WorkDir.of(out).root.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(out / REJECTS_NAME, rejects)
    atomic_write_parquet(out / DEDUP_NAME, plan.records())
    atomic_write_parquet(out / signature_files.DATASET_SIGNATURES, surviving_signatures(plan))


def surviving_signatures(plan: MergePlan) -> pa.Table:
    """The signatures of the samples the merges leave."""
    if plan.table is None:
        return signature_files.SCHEMA.empty_table()
    keep = pa.array([p not in plan.gone for p in places(plan.table)], pa.bool_())
    return signature_files.select(plan.table.filter(keep))


def reject_counts(rejects: pa.Table) -> dict[str, int]:
    if rejects.num_rows == 0:
        return {}
    counts = pc.value_counts(rejects["reason"]).to_pylist()
    return dict(Counter({c["values"]: c["counts"] for c in counts}).most_common())


def add_sample(writer: DatasetWriter, place: Place, sample: Sample, gone: set, extra: dict,
               advance: Callable[[int], None] | None) -> None:
    """Write one staged or existing sample unless it was dropped; the duplicates merged into
    it join those its json already lists."""
    if place in gone:
        return
    meta = sample.meta
    if place in extra:
        dups = [*meta.extra.get("duplicates", []), *extra[place]]
        meta = dataclasses.replace(meta, dup_count=len(dups), extra={**meta.extra, "duplicates": dups})
    writer.add(meta, sample.data)
    if advance:
        advance(1)


def staged_samples(work: WorkDir, numbers: Iterable[int]) -> Iterable[tuple[Place, Sample]]:
    for number in numbers:
        for row, sample in enumerate(Dataset(work.slice_samples(number)).iter_samples()):
            yield (number, row), sample


def pack(out: Path, work: WorkDir, numbers: Iterable[int], plan: MergePlan, config: WriterConfig,
         curation: dict[str, Any], progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    extra = plan.absorbed()
    with DatasetWriter(out, config) as writer:
        for place, sample in staged_samples(work, numbers):
            add_sample(writer, place, sample, plan.gone, extra, progress)
        return writer.finalize(curation=curation)
