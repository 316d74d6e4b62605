"""Store a folder of image files, untouched, as a dataset: serial and local.

The simplest way in (and the demo's): every file is probed, admitted or recorded as a reject
with its reason. `anyres-curate` is the scalable path, with Ray, downloads, resumption and
near-duplicate removal; this one suits a folder that is already clean.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import atomic_write
from .errors import DatasetError
from .manifest import WORK_DIR
from .probe import DEFAULT_MAX_PIXELS, ProbeError, probe_image
from .schema import SampleMeta
from .writer import DEFAULT_SHARD_BYTES, DatasetWriter, WriterConfig

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp"}
REJECTS_NAME = f"{WORK_DIR}/rejects.parquet"
REJECT_SCHEMA = pa.schema([("source_id", pa.string()), ("reason", pa.string()), ("detail", pa.string())])


@dataclass(frozen=True)
class PackConfig:
    min_side: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_shard_bytes: int = DEFAULT_SHARD_BYTES
    name: str | None = None
    attribution: str | None = None  # CSV: a `path` column (relative to the folder) + ATTRIBUTION_COLUMNS


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


def file_key(relative_path: str) -> str:
    return "file-" + hashlib.sha1(relative_path.encode()).hexdigest()[:20]


def image_files(folder: Path) -> Iterator[Path]:
    """Image files under `folder`, sorted; symlinked folders are not followed (no loops)."""
    for parent, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(parent) / name


def pack_folder(
    folder: str | Path, out: str | Path, config: PackConfig = PackConfig(),
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"not a folder: {folder}")
    files = list(image_files(folder))
    if not files:
        raise DatasetError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    attribution = read_attribution(config.attribution) if config.attribution else {}
    rejects: list[dict[str, str]] = []
    kept_by_sha: dict[str, str] = {}
    writer_config = WriterConfig(max_shard_bytes=config.max_shard_bytes, name=config.name)
    with DatasetWriter(out, writer_config) as writer:
        for path in files:
            relative = path.relative_to(folder).as_posix()
            meta, data, reason = _admit(path, relative, config, attribution.get(relative, {}))
            if meta is not None and meta.sha256 in kept_by_sha:
                meta, reason = None, ("duplicate", f"same bytes as {kept_by_sha[meta.sha256]}")
            if meta is None:
                rejects.append({"source_id": relative, "reason": reason[0], "detail": reason[1]})
            else:
                kept_by_sha[meta.sha256] = relative
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


def _admit(path: Path, relative: str, config: PackConfig, provenance: dict[str, str]):
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, None, ("unreadable", exc.strerror or str(exc))
    try:
        info = probe_image(data, max_pixels=config.max_pixels)
    except ProbeError as exc:
        return None, None, (exc.reason, exc.detail)
    if min(info.width, info.height) < config.min_side:
        return None, None, ("too-small", f"{info.width}x{info.height} below min side {config.min_side}")
    if info.frames > 1:
        return None, None, ("animated", f"{info.frames} frames")
    meta = SampleMeta(
        key=file_key(relative), width=info.width, height=info.height, orientation=info.orientation,
        format=info.format, ext=info.ext, mode=info.mode, nbytes=info.nbytes, sha256=info.sha256,
        phash=info.phash, source="folder", source_id=relative, **{"title": path.stem, **provenance},
    )
    return meta, data, None


def _write_rejects(root: Path, rejects: list[dict[str, str]]) -> None:
    (root / WORK_DIR).mkdir(exist_ok=True)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rejects, schema=REJECT_SCHEMA), sink)
    atomic_write(root / REJECTS_NAME, sink.getvalue())
