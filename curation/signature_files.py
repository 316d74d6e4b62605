"""Where the dedup signatures (`dedup/image_signature.py`) live, and how they meet the metadata.

A fetch slice writes `signatures.parquet` beside its index, one row per kept sample in index
order, before its completion marker. A finished dataset keeps the signatures of its samples
in `work/signatures.parquet` (by key), written with the dedup records before the shards are
packed, so that `--add` and `--exclude` can match new images against it later. A dataset
made before signatures were stored (or by another tool, or with its work folder removed) has
none: its samples get null signatures, and only the pHash stages see them.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shards import DatasetError
from shards.format.manifest import WORK_DIR
from shards.storage.location import Location

from .dedup.image_signature import SCHEMA

__all__ = ["DATASET_SIGNATURES", "SCHEMA", "SIGNATURES_NAME", "attach", "check", "of_dataset", "read", "select"]

SIGNATURES_NAME = "signatures.parquet"
MAX_REMOTE_BYTES = 4 * 2**30  # a remote signature file is read whole: about 4 million samples
DATASET_SIGNATURES = f"{WORK_DIR}/{SIGNATURES_NAME}"
COLUMNS = tuple(name for name in SCHEMA.names if name != "key")


def read(path: Path | str, source: pa.BufferReader | None = None) -> pa.Table | None:
    """A signature file (at `path`, or its bytes in `source`), or None where there is none. A
    dataset may come from anyone: a file that is not one (another schema, not Parquet, damaged)
    is a one-line DatasetError."""
    try:
        table = pq.read_table(source if source is not None else path)
    except FileNotFoundError:
        return None
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from None
    try:
        return table.select(list(SCHEMA.names)).cast(SCHEMA)
    except (KeyError, pa.ArrowException) as exc:
        raise _other_version(path, str(exc)) from None


def check(dataset: str | Path) -> None:
    """Refuse, before any work, a dataset whose signature file is not one (its schema only)."""
    if "://" in str(dataset):
        return
    path = Path(dataset) / DATASET_SIGNATURES
    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        return
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from None
    missing = [name for name in SCHEMA.names if name not in schema.names]
    if missing:
        raise _other_version(path, f"no {', '.join(missing)}")


def _unreadable(path, exc: Exception) -> DatasetError:
    return DatasetError(f"{path} is not a readable signature file: {str(exc)[:200]}")


def _other_version(path, why: str) -> DatasetError:
    return DatasetError(f"{path} is not a signature file of this version ({why[:200]}); "
                        "remove it to match its dataset by pHash only")


def attach(table: pa.Table, signatures: pa.Table | None) -> pa.Table:
    """`table` (with a `key` column) with the signature columns joined on by key; nulls where a
    sample has none. Rows keep their order."""
    found = signatures if signatures is not None else SCHEMA.empty_table()
    where = pc.index_in(table["key"], value_set=found["key"])
    for name in COLUMNS:
        column = found[name].combine_chunks() if found.num_rows else pa.array([], SCHEMA.field(name).type)
        table = table.append_column(name, pc.take(column, where) if found.num_rows
                                    else pa.nulls(table.num_rows, SCHEMA.field(name).type))
    return table


def select(table: pa.Table) -> pa.Table:
    """The signature rows of `table` (metadata with the signature columns), those it has."""
    if "windows" not in table.column_names:
        return SCHEMA.empty_table()
    rows = table.select(list(SCHEMA.names)).filter(pc.is_valid(table["windows"]))
    return rows.cast(SCHEMA)


def of_dataset(dataset: str | Path) -> pa.Table | None:
    """A dataset's stored signatures, local or at a URL (read whole, within
    MAX_REMOTE_BYTES); None for a dataset without them."""
    location = Location.parse(dataset)
    if location.kind == "local":
        return read(Path(location.path(DATASET_SIGNATURES)))
    if not location.exists(DATASET_SIGNATURES):
        return None
    data = location.read_file(DATASET_SIGNATURES, MAX_REMOTE_BYTES)
    return read(location.display(DATASET_SIGNATURES), pa.BufferReader(data))
