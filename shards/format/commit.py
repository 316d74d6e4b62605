"""Committing to a dataset: the one code path that writes a dataset's index and manifest.

A new dataset (`DatasetWriter.finalize`, so `pack`, `subset` and curation) writes its index,
then its manifest, the commit point. A change to an existing dataset (curation's `--add`)
cannot write in place: readers may be reading it, and a kill must not leave a mix. So it
- writes its new shards as a small dataset in a stage folder, and names them after the highest
  shard number in use (new names: no reader of the old manifest looks at them);
- stages the new index, the new manifest and any other files next to them, and then the
  marker that decides the commit, listing the moves and the shards it replaces;
- rolls forward: the new shards into `shards/`, each staged file into place (the index, then
  the manifest last), then the replaced shards go. A kill before the marker leaves the dataset
  untouched; after it, `finish_commit` completes the commit, as often as needed.
Every manifest's content fields come from `manifest.content_fields`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from plumbing.atomic import atomic_write, atomic_write_json
from plumbing.digest import file_sha256
from shards.format.index import index_bytes
from shards.format.manifest import INDEX_NAME, MANIFEST_NAME, content_fields, manifest_bytes, shard_name
from shards.format.schema import INDEX_SCHEMA

MARKER = "commit.json"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_dataset_files(root: Path, index_data: bytes, manifest: dict[str, Any]) -> None:
    """The index, then the manifest: a folder is a dataset once its manifest exists."""
    atomic_write(root / INDEX_NAME, index_data)
    atomic_write(root / MANIFEST_NAME, manifest_bytes(manifest))


def changed_manifest(old: dict[str, Any], shards: list[dict[str, Any]], table: pa.Table,
                     **fields: Any) -> tuple[bytes, dict[str, Any]]:
    """An existing dataset's new index bytes and manifest after a change: the content fields
    recomputed where they stand, everything else kept, `fields` set (e.g. `curation`)."""
    index_data = index_bytes(table)
    return index_data, {**old, **content_fields(shards, table, index_data), "updated": now(), **fields}


def adopt_shards(stage: Path, staged: Path, staged_manifest: dict[str, Any],
                 in_use: Iterable[str]) -> tuple[dict[str, str], list[dict[str, Any]], pa.Table]:
    """Name the shards of the dataset written in `staged` (inside `stage`) after the highest
    number in `in_use`: the moves that will bring them in, and their manifest entries and index
    rows under the new names."""
    used = [int(m.group(1)) for s in in_use if (m := re.search(r"shard-(\d+)\.tar$", s))]
    first = max(used, default=-1) + 1
    renamed = {s["name"]: shard_name(first + k) for k, s in enumerate(staged_manifest["shards"])}
    moves = {(staged / old).relative_to(stage).as_posix(): new for old, new in renamed.items()}
    index = pq.read_table(staged / INDEX_NAME)
    index = index.set_column(index.column_names.index("shard"), "shard",
                             pa.array([renamed[s] for s in index["shard"].to_pylist()], pa.string()))
    return moves, [{**s, "name": renamed[s["name"]]} for s in staged_manifest["shards"]], index.cast(INDEX_SCHEMA)


def replace_shards(root: Path, old_manifest: dict[str, Any], old_index: pa.Table, replaced: Iterable[str],
                   new_shards: list[dict[str, Any]], new_index: pa.Table) -> tuple[list[dict[str, Any]], pa.Table]:
    """The shard list and index after `replaced` shards give way to new ones, appended."""
    gone = set(replaced)
    keep = pa.array([s not in gone for s in old_index["shard"].to_pylist()], pa.bool_())
    shards = [_with_digest(root, s) for s in old_manifest["shards"] if s["name"] not in gone] + new_shards
    return shards, pa.concat_tables([old_index.filter(keep), new_index])


def _with_digest(root: Path, shard: dict[str, Any]) -> dict[str, Any]:
    # a dataset written before shards carried their digest gets it now
    if "sha256" in shard:
        return shard
    return {**shard, "sha256": file_sha256(root / shard["name"])}


def _staged(stage: Path, name: str) -> Path:
    return stage / (name.replace("/", "--") + ".next")


def stage_commit(stage: Path, index_data: bytes, manifest: dict[str, Any], replaced: list[str],
                 moves: dict[str, str], files: dict[str, bytes] | None = None) -> None:
    """Stage the new index, the manifest and `files` (by path relative to the dataset), then decide
    the commit: from here on it completes, whatever happens."""
    order = [*(files or {}), INDEX_NAME, MANIFEST_NAME]  # the manifest last: it is the commit point
    for name, data in (files or {}).items():
        atomic_write(_staged(stage, name), data)
    atomic_write(_staged(stage, INDEX_NAME), index_data)
    atomic_write(_staged(stage, MANIFEST_NAME), manifest_bytes(manifest))
    atomic_write_json(stage / MARKER, {"moves": moves, "files": order, "replaced": replaced})


def finish_commit(root: Path, stage: Path) -> bool:
    """Roll a decided commit forward; False when none is pending. Safe to repeat after a kill
    at any point."""
    try:
        decided = json.loads((stage / MARKER).read_bytes())
    except FileNotFoundError:
        return False
    for staged, name in decided["moves"].items():  # new shard names: no reader looks at them yet
        if (stage / staged).exists():
            os.replace(stage / staged, root / name)
    for name in decided["files"]:
        if _staged(stage, name).exists():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(_staged(stage, name), root / name)
    for name in decided["replaced"]:
        (root / name).unlink(missing_ok=True)
    (stage / MARKER).unlink()
    return True
