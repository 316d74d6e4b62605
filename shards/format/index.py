"""`index.parquet`: one row per sample, and the filters that select rows from it.

The index is read whole, so it is bounded first (SECURITY.md): its file size, and its rows and
decoded size as the parquet footer states them, before a single column is decoded.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shards.format.limits import Limits
from shards.format.manifest import INDEX_NAME
from shards.format.schema import INDEX_SCHEMA
from shards.storage.location import DatasetError, Location


@dataclass(frozen=True)
class IndexFile:
    table: pa.Table
    sha256: str  # of the file's bytes, for the dataset's root hash
    nbytes: int


ROW_SLACK = 1000  # rows an index may hold beyond the manifest's num_samples before it is refused


def _check_bounds(meta: pq.FileMetaData, nbytes: int, limits: Limits, where: str, num_samples: int | None) -> None:
    # From the footer alone, before any column is decoded: a small file can claim millions of
    # rows or gigabytes of strings, and decoding it would take the memory first.
    rows = meta.num_rows
    if num_samples is not None and rows > num_samples + ROW_SLACK:
        raise DatasetError(f"index {where} has {rows} rows, but the manifest says {num_samples} samples")
    if rows > limits.max_samples:
        raise DatasetError(f"index {where} has {rows} rows, over the bound of {limits.max_samples} "
                           "(SECURITY.md: limits, ANYRES_MAX_SAMPLES)")
    if rows > nbytes // limits.min_index_bytes_per_row:
        raise DatasetError(f"corrupt index {where}: {rows} rows in {nbytes} bytes is fewer than "
                           f"{limits.min_index_bytes_per_row} bytes a row, which no real index is")
    decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if decoded > limits.max_index_memory:
        raise DatasetError(f"index {where} decodes to {decoded} bytes, over the bound of "
                           f"{limits.max_index_memory} (ANYRES_MAX_INDEX_MEMORY)")


def _arrow_owned(raw: bytes) -> pa.Buffer:
    # A copy in Arrow's own memory, never a view of the Python bytes: Arrow's worker threads
    # may drop the last reference to what they read after `main` has returned, and releasing
    # a Python object takes the GIL, which a thread cannot get once the interpreter exits:
    # CPython ends it with pthread_exit inside a C++ destructor, and libstdc++ aborts the
    # process ("terminate called without an active exception", exit 134, under load).
    sink = pa.BufferOutputStream()
    sink.write(raw)
    return sink.getvalue()


def read_index(loc: Location, num_samples: int | None = None) -> IndexFile:
    if not loc.exists(INDEX_NAME):
        raise DatasetError(f"dataset has no {INDEX_NAME}: {loc.url}")
    where = loc.display(INDEX_NAME)
    raw = loc.read_file(INDEX_NAME, loc.limits.max_index_bytes)
    try:
        parquet = pq.ParquetFile(pa.BufferReader(_arrow_owned(raw)))
        _check_bounds(parquet.metadata, len(raw), loc.limits, where, num_samples)
        table = parquet.read()
        missing = [name for name in INDEX_SCHEMA.names if name not in table.column_names]
        if missing:
            raise DatasetError(f"corrupt index {where}: missing columns {missing}")
        table = table.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
        table.validate(full=True)  # e.g. invalid UTF-8 in a string column
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError) as exc:
        raise DatasetError(f"corrupt index {where}: {str(exc)[:300]}") from None
    nulls = [f.name for f in INDEX_SCHEMA if not f.nullable and table[f.name].null_count]
    if nulls:
        raise DatasetError(f"corrupt index {where}: nulls in required columns {nulls}")
    return IndexFile(table, hashlib.sha256(raw).hexdigest(), len(raw))


def index_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)


def index_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


@dataclass(frozen=True)
class IndexFilter:
    """Row selection by index columns; every set criterion must hold."""

    min_side: int | None = None
    max_side: int | None = None
    min_megapixels: float | None = None
    licenses: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()

    def describe(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, ())}

    def mask(self, table: pa.Table) -> pa.ChunkedArray:
        keep = pa.chunked_array([pa.array([True] * table.num_rows, pa.bool_())])
        width, height = table["width"], table["height"]
        side = pc.min_element_wise(width, height)
        if self.min_side is not None:
            keep = pc.and_(keep, pc.greater_equal(side, self.min_side))
        if self.max_side is not None:
            keep = pc.and_(keep, pc.less_equal(pc.max_element_wise(width, height), self.max_side))
        if self.min_megapixels is not None:
            pixels = pc.multiply(pc.cast(width, pa.int64()), pc.cast(height, pa.int64()))
            keep = pc.and_(keep, pc.greater_equal(pixels, self.min_megapixels * 1e6))
        for column, values in (
            ("license", self.licenses),
            ("source", self.sources),
            ("format", self.formats),
            ("key", self.keys),
        ):
            if values:
                keep = pc.and_(keep, pc.fill_null(pc.is_in(table[column], pa.array(values)), False))
        return keep

    def apply(self, table: pa.Table) -> pa.Table:
        return table.filter(self.mask(table))
