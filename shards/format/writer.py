"""Writing a dataset: byte-bounded shards, then the index and the manifest.

Every file is written under a temporary name and renamed when complete, and `dataset.json`
is renamed last: a crash or a kill leaves partial files only under `*.tmp` names, and a folder
is a dataset only once its manifest exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plumbing.atomic import TMP_SUFFIX, finish, open_exclusive, tmp_path
from plumbing.errors import DatasetError
from shards.format.commit import now, write_dataset_files
from shards.format.index import index_bytes, index_table
from shards.format.manifest import INDEX_NAME, MANIFEST_NAME, SHARD_DIR, content_fields, shard_name
from shards.format.schema import FORMAT_NAME, FORMAT_VERSION, FormatError, SampleMeta
from shards.format.tario import END_OF_ARCHIVE, encode_member, member_cost

DEFAULT_SHARD_BYTES = 1_000_000_000
MIN_SHARD_BYTES = 4 * 512 + len(END_OF_ARCHIVE)


def sample_cost(meta: SampleMeta, json_bytes: bytes) -> int:
    """Bytes a sample adds to a shard: both members' headers, data and padding."""
    return member_cost(meta.member_name, meta.nbytes) + member_cost(f"{meta.key}.json", len(json_bytes))


class ShardWriter:
    """One tar file, never larger than `max_bytes` including its end-of-archive blocks."""

    def __init__(self, path: Path, max_bytes: int):
        self.path = path
        self.max_bytes = max_bytes
        self.tmp_path = tmp_path(path)
        self._file = open_exclusive(self.tmp_path)
        self._sha256 = hashlib.sha256()  # the shard's digest for the manifest, as it is written
        self.nbytes = 0
        self.num_samples = 0

    def fits(self, cost: int) -> bool:
        return self.nbytes + cost + len(END_OF_ARCHIVE) <= self.max_bytes

    def add(self, meta: SampleMeta, data: bytes, json_bytes: bytes) -> int:
        """Append a sample; returns the byte offset of its image data in the shard."""
        image_member, data_start = encode_member(meta.member_name, data)
        json_member, _ = encode_member(f"{meta.key}.json", json_bytes)
        offset = self.nbytes + data_start
        for part in (image_member, json_member):
            self._file.write(part)
            self._sha256.update(part)
        self.nbytes += len(image_member) + len(json_member)
        self.num_samples += 1
        return offset

    def close(self) -> None:
        self._file.write(END_OF_ARCHIVE)
        self._sha256.update(END_OF_ARCHIVE)
        self.nbytes += len(END_OF_ARCHIVE)
        finish(self._file, self.tmp_path, self.path)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def abort(self) -> None:
        self._file.close()
        self.tmp_path.unlink(missing_ok=True)


@dataclass(frozen=True)
class WriterConfig:
    max_shard_bytes: int = DEFAULT_SHARD_BYTES
    name: str | None = None

    def __post_init__(self) -> None:
        # The smallest shard that can hold anything: two headers, two data blocks, the end.
        if self.max_shard_bytes < MIN_SHARD_BYTES:
            raise DatasetError(f"shard size {self.max_shard_bytes} bytes is too small to hold a sample")


class DatasetWriter:
    """Adds samples in order, rolls over to a new shard at the byte bound, finalises once."""

    def __init__(self, root: str | Path, config: WriterConfig = WriterConfig()):
        self.root = Path(root)
        self.config = config
        if (self.root / MANIFEST_NAME).exists():
            raise DatasetError(f"{self.root} already holds a dataset; choose another output folder")
        (self.root / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        self._clear_unfinished()
        self._keys: set[str] = set()
        self._rows: list[dict[str, Any]] = []
        self._shards: list[dict[str, Any]] = []
        self._current: ShardWriter | None = None
        self._finalized = False

    def _clear_unfinished(self) -> None:
        # Without a manifest nothing here is a dataset yet: shards left by a killed writer
        # would otherwise stay behind as strays next to the new ones.
        for stale in (self.root / SHARD_DIR).glob("shard-*.tar*"):
            stale.unlink()
        for name in (INDEX_NAME, INDEX_NAME + TMP_SUFFIX, MANIFEST_NAME + TMP_SUFFIX):
            (self.root / name).unlink(missing_ok=True)

    @property
    def num_samples(self) -> int:
        return len(self._rows)

    def add(self, meta: SampleMeta, data: bytes) -> dict[str, Any]:
        if self._finalized:
            raise RuntimeError("dataset already finalised")
        if meta.key in self._keys:
            raise FormatError(f"duplicate sample key {meta.key!r}")
        if len(data) != meta.nbytes:
            raise FormatError(f"sample {meta.key}: nbytes says {meta.nbytes}, data has {len(data)}")
        json_bytes = meta.to_json_bytes()
        cost = sample_cost(meta, json_bytes)
        if cost + len(END_OF_ARCHIVE) > self.config.max_shard_bytes:
            raise FormatError(
                f"sample {meta.key} needs {cost} bytes in a tar, more than the shard bound "
                f"{self.config.max_shard_bytes}"
            )
        if self._current is None or not self._current.fits(cost):
            self._roll_over()
        offset = self._current.add(meta, data, json_bytes)
        row = {**meta.to_record(), "shard": shard_name(len(self._shards)), "offset": offset}
        self._keys.add(meta.key)
        self._rows.append(row)
        return row

    def _roll_over(self) -> None:
        self._close_current()
        path = self.root / shard_name(len(self._shards))
        self._current = ShardWriter(path, self.config.max_shard_bytes)

    def _close_current(self) -> None:
        if self._current is None:
            return
        self._current.close()
        self._shards.append(
            {
                "name": self._current.path.relative_to(self.root).as_posix(),
                "num_samples": self._current.num_samples,
                "nbytes": self._current.nbytes,
                "sha256": self._current.sha256,
            }
        )
        self._current = None

    def finalize(self, curation: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Close the last shard, write the index, then the manifest (`commit`)."""
        self._close_current()
        table = index_table(self._rows)
        index_data = index_bytes(table)
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "name": self.config.name or self.root.name,
            "created": now(),
            **content_fields(self._shards, table, index_data, max_shard_bytes=self.config.max_shard_bytes),
            "curation": curation or {},
            **fields,
        }
        write_dataset_files(self.root, index_data, manifest)
        self._finalized = True
        return manifest

    def abort(self) -> None:
        if self._current is not None:
            self._current.abort()
            self._current = None

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
