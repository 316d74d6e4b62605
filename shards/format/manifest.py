"""`dataset.json`: the manifest that makes a folder a dataset.

It is written last, atomically, when a dataset is finalised: a folder without it is not a
dataset, whatever else it holds. Read back, it is untrusted input (SECURITY.md): read within a
size bound, parsed by `schema.load_json`, and every field a reader relies on is checked for
type and range here, once. Its `root_hash` pins the index and every shard's bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from plumbing.errors import DatasetError
from shards.format.schema import FORMAT_NAME, FORMAT_VERSION, FormatError, load_json
from shards.storage.location import Location, check_relative
from shards.tools.stats import summarize

MANIFEST_NAME = "dataset.json"
INDEX_NAME = "index.parquet"
SHARD_DIR = "shards"
WORK_DIR = "work"


def shard_name(number: int) -> str:
    return f"{SHARD_DIR}/shard-{number:06d}.tar"


def read_manifest(loc: Location) -> dict[str, Any]:
    if loc.kind != "http" and not loc.exists():  # an http prefix need not answer for itself
        raise DatasetError(f"no such dataset: {loc.url}")
    if not loc.exists(MANIFEST_NAME):
        if loc.kind == "http":
            raise DatasetError(f"no such dataset (no {MANIFEST_NAME} there): {loc.url}")
        raise DatasetError(f"not an anyres dataset (no {MANIFEST_NAME}): {loc.url}")
    where = loc.display(MANIFEST_NAME)
    raw = loc.read_file(MANIFEST_NAME, loc.limits.max_manifest_bytes)
    try:
        doc = load_json(raw, f"manifest {where}", loc.limits.max_json_depth)
    except FormatError as exc:
        raise DatasetError(f"corrupt {exc}") from None
    return check_manifest(doc, where)


MAX_COUNT = 2**50  # bytes or samples: beyond any real dataset, and far inside every integer type
HEX64 = re.compile(r"[0-9a-f]{64}")


def _count(doc: dict[str, Any], name: str, where: str) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise DatasetError(f"corrupt manifest {where}: {name!r} must be an integer in 0..2**50")
    return value


def check_shard_name(name: Any) -> str:
    """A shard name from a manifest or an index: a plain relative path under shards/, ending .tar."""
    check_relative(name)
    if not (name.startswith(SHARD_DIR + "/") and name.endswith(".tar")):
        raise DatasetError(f"refusing the shard name {name[:200]!r}: shards are {SHARD_DIR}/NAME.tar")
    return name


def check_manifest(doc: Any, where: str) -> dict[str, Any]:
    """The fields readers rely on, with their types and ranges; descriptive fields (name,
    curation) stay as they are, and whoever shows them must not trust their types."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise DatasetError(f"not an anyres dataset manifest (format is not {FORMAT_NAME!r}): {where}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DatasetError(f"corrupt manifest {where}: version {str(version)[:20]!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise DatasetError(
            f"{where} is format version {version}, newer than this anyres reads "
            f"({FORMAT_VERSION}): upgrade anyres"
        )
    shards = doc.get("shards")
    if not isinstance(shards, list) or not all(isinstance(s, dict) for s in shards):
        raise DatasetError(f"corrupt manifest {where}: 'shards' must list objects with a name")
    for entry in shards:
        try:
            check_shard_name(entry.get("name"))
        except DatasetError as exc:
            raise DatasetError(f"corrupt manifest {where}: {exc}") from None
        _count(entry, "num_samples", where)
        _count(entry, "nbytes", where)
        if "sha256" in entry and not (isinstance(entry["sha256"], str) and HEX64.fullmatch(entry["sha256"])):
            raise DatasetError(f"corrupt manifest {where}: shard sha256 must be 64 lower-case hex digits")
    for name in ("num_samples", "num_shards", "total_bytes"):
        _count(doc, name, where)
    root = doc.get(ROOT_FIELD)
    if root is not None and not (isinstance(root, str) and HEX64.fullmatch(root)):
        raise DatasetError(f"corrupt manifest {where}: {ROOT_FIELD} must be 64 lower-case hex digits")
    return doc


def manifest_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode()


# The dataset's root hash pins everything a reader gets from it: the index file's bytes, and
# every listed shard by name, size and sha256. One line each, so it can be recomputed by hand.
ROOT_FIELD = "root_hash"
ROOT_PREFIX = "anyres-root-v1"


def root_hash(index_sha256: str, index_nbytes: int, shards: list[dict[str, Any]]) -> str:
    lines = [ROOT_PREFIX, f"{INDEX_NAME} {index_nbytes} {index_sha256}"]
    lines += [f"{s['name']} {s['nbytes']} {s['sha256']}" for s in shards]
    return hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()


def content_fields(shards: list[dict[str, Any]], index, index_data: bytes, **settings: Any) -> dict[str, Any]:
    """The manifest fields that follow from a dataset's shards (each with name, num_samples,
    nbytes and sha256), its index table and the exact bytes of its index.parquet: the one place
    they are computed, for a new dataset and for a change to an existing one."""
    missing = [s.get("name") for s in shards if "sha256" not in s]
    if missing:
        raise ValueError(f"shard entries without a sha256: {missing[:3]}")
    return {
        "num_samples": index.num_rows,
        "num_shards": len(shards),
        "total_bytes": sum(s["nbytes"] for s in shards),
        ROOT_FIELD: root_hash(hashlib.sha256(index_data).hexdigest(), len(index_data), shards),
        **settings,  # e.g. max_shard_bytes, kept at its place in the manifest
        "shards": shards,
        "stats": summarize(index),
    }
