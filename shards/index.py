"""`index.parquet`: one row per sample, and the filters that select rows from it."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .location import DatasetError, Location
from .manifest import INDEX_NAME
from .schema import INDEX_SCHEMA


def read_index(loc: Location) -> pa.Table:
    if not loc.exists(INDEX_NAME):
        raise DatasetError(f"dataset has no {INDEX_NAME}: {loc.url}")
    raw = loc.read_bytes(INDEX_NAME)
    try:
        table = pq.read_table(io.BytesIO(raw))
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"corrupt index {loc.display(INDEX_NAME)}: {exc}") from None
    missing = [name for name in INDEX_SCHEMA.names if name not in table.column_names]
    if missing:
        raise DatasetError(f"corrupt index {loc.display(INDEX_NAME)}: missing columns {missing}")
    try:
        return table.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
    except (pa.ArrowException, ValueError) as exc:
        raise DatasetError(f"corrupt index {loc.display(INDEX_NAME)}: {exc}") from None


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
