"""Store a folder of image files, untouched, as a dataset: serial and local.

The simplest way in (and the demo's): every file is probed, admitted or recorded as a reject
with its reason, by the same policy as `anyres-curate` (`shards.intake.admission`). `anyres-curate` is
the scalable path, with Ray, downloads, resumption and near-duplicate removal; this one suits a
folder that is already clean (exact copies are dropped, the first one walked is kept).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from plumbing.atomic import atomic_write_parquet
from plumbing.errors import DatasetError
from shards.format.manifest import WORK_DIR
from shards.format.writer import DEFAULT_SHARD_BYTES, DatasetWriter, WriterConfig
from shards.intake.admission import (
    IMAGE_SUFFIXES,
    FilterConfig,
    FolderEntry,
    admit,
    file_key,
    read_file,
    sample_meta,
    walk_images,
)
from shards.intake.probe import DEFAULT_MAX_PIXELS, ProbeError

REJECTS_NAME = f"{WORK_DIR}/rejects.parquet"
REJECT_SCHEMA = pa.schema([("source_id", pa.string()), ("reason", pa.string()), ("detail", pa.string())])


@dataclass(frozen=True)
class PackConfig:
    min_side: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_shard_bytes: int = DEFAULT_SHARD_BYTES
    name: str | None = None
    attribution: str | None = None  # CSV: a `path` column (relative to the folder) + ATTRIBUTION_COLUMNS

    @property
    def filters(self) -> FilterConfig:
        return FilterConfig(min_side=self.min_side, max_pixels=self.max_pixels)


ATTRIBUTION_COLUMNS = ("license", "license_url", "owner", "title", "date_taken", "url")


def read_attribution(csv_path: str) -> dict[str, dict[str, str]]:
    """Per relative path, the provenance fields a CSV gives (empty cells are left out)."""
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = set(reader.fieldnames or ())
            unknown = columns - {"path", *ATTRIBUTION_COLUMNS}
            if "path" not in columns or unknown:
                raise DatasetError(
                    f"{csv_path}: needs a 'path' column and only {', '.join(ATTRIBUTION_COLUMNS)}"
                    + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
                )
            return {
                row["path"]: {k: v for k, v in row.items() if k != "path" and v}
                for row in reader
            }
    except OSError as exc:
        raise DatasetError(f"cannot read {csv_path}: {exc.strerror}") from None


def image_files(folder: Path) -> list[FolderEntry]:
    """What `pack_folder` looks at: the shared folder policy (`shards.intake.admission`)."""
    return list(walk_images(folder))


def pack_folder(
    folder: str | Path, out: str | Path, config: PackConfig = PackConfig(),
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"not a folder: {folder}")
    files = image_files(folder)
    if not files:
        raise DatasetError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    attribution = read_attribution(config.attribution) if config.attribution else {}
    rejects: list[dict[str, str]] = []
    kept_by_sha: dict[str, str] = {}
    writer_config = WriterConfig(max_shard_bytes=config.max_shard_bytes, name=config.name)
    with DatasetWriter(out, writer_config) as writer:
        for entry in files:
            meta, data, reason = _admit(entry, config, attribution.get(entry.relative, {}))
            if meta is not None and meta.sha256 in kept_by_sha:
                meta, reason = None, ("duplicate", f"same bytes as {kept_by_sha[meta.sha256]}")
            if meta is None:
                rejects.append({"source_id": entry.relative, "reason": reason[0], "detail": reason[1]})
            else:
                kept_by_sha[meta.sha256] = entry.relative
                writer.add(meta, data)
            if progress:
                progress(1)
        if writer.num_samples == 0:
            raise DatasetError(f"no file under {folder} was admitted: {Counter(r['reason'] for r in rejects)}")
        _write_rejects(Path(out), rejects)
        return writer.finalize(
            curation={
                "tool": "anyres-shards pack",
                "config": asdict(config),
                "sources": [{"source": "folder", "path": str(folder.absolute())}],
                "counts": {"seen": len(files), "kept": writer.num_samples, "rejected": len(rejects)},
                "rejects": dict(Counter(r["reason"] for r in rejects).most_common()),
            }
        )


def _admit(entry: FolderEntry, config: PackConfig, provenance: dict[str, str]):
    if entry.error is not None:
        return None, None, entry.error
    try:
        data = read_file(entry.path)
        info = admit(data, config.filters)
    except ProbeError as exc:
        return None, None, (exc.reason, exc.detail)
    meta = sample_meta(info, file_key(entry.relative), "folder", entry.relative,
                       {"title": Path(entry.relative).stem, **provenance})
    return meta, data, None


def _write_rejects(root: Path, rejects: list[dict[str, str]]) -> None:
    (root / WORK_DIR).mkdir(exist_ok=True)
    atomic_write_parquet(root / REJECTS_NAME, pa.Table.from_pylist(rejects, schema=REJECT_SCHEMA))
