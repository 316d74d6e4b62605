"""`dataset.json`: the manifest that makes a folder a dataset.

It is written last, atomically, when a dataset is finalised: a folder without it is not a
dataset, whatever else it holds.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import DatasetError
from .location import Location
from .schema import FORMAT_NAME, FORMAT_VERSION
from .stats import summarize

MANIFEST_NAME = "dataset.json"
INDEX_NAME = "index.parquet"
SHARD_DIR = "shards"
WORK_DIR = "work"


def shard_name(number: int) -> str:
    return f"{SHARD_DIR}/shard-{number:06d}.tar"


def read_manifest(loc: Location) -> dict[str, Any]:
    if not loc.exists():
        raise DatasetError(f"no such dataset: {loc.url}")
    if not loc.exists(MANIFEST_NAME):
        raise DatasetError(f"not an anyres dataset (no {MANIFEST_NAME}): {loc.url}")
    raw = loc.read_bytes(MANIFEST_NAME)
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"corrupt manifest {loc.display(MANIFEST_NAME)}: {exc}") from None
    return check_manifest(doc, loc.display(MANIFEST_NAME))


def check_manifest(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise DatasetError(f"not an anyres dataset manifest (format is not {FORMAT_NAME!r}): {where}")
    version = doc.get("version")
    if not isinstance(version, int):
        raise DatasetError(f"corrupt manifest {where}: version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        raise DatasetError(
            f"{where} is format version {version}, newer than this anyres reads "
            f"({FORMAT_VERSION}): upgrade anyres"
        )
    shards = doc.get("shards")
    if not isinstance(shards, list) or not all(
        isinstance(s, dict) and isinstance(s.get("name"), str) for s in shards
    ):
        raise DatasetError(f"corrupt manifest {where}: 'shards' must list objects with a name")
    for name in ("num_samples", "num_shards", "total_bytes"):
        if not isinstance(doc.get(name), int):
            raise DatasetError(f"corrupt manifest {where}: {name!r} must be an integer")
    return doc


def manifest_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode()


def content_fields(shards: list[dict[str, Any]], index, **settings: Any) -> dict[str, Any]:
    """The manifest fields that follow from a dataset's shards and its index table: the one
    place they are computed, for a new dataset and for a change to an existing one."""
    return {
        "num_samples": index.num_rows,
        "num_shards": len(shards),
        "total_bytes": sum(s["nbytes"] for s in shards),
        **settings,  # e.g. max_shard_bytes, kept at its place in the manifest
        "shards": shards,
        "stats": summarize(index),
    }
