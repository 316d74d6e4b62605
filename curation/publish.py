"""A dataset whose `--out` is a URL: the local mirror it is packed in, and publishing it.

Object stores have no rename, so such a run works in three places: its slices are committed at
the URL (`store.UrlSliceStore`); dedup and pack run in a local mirror of the dataset
(`--scratch`) exactly as for a local `--out`, reading the staged samples from the URL; and
publishing uploads the packed dataset: each shard whole under its final name (an object store
shows an object only once its upload completes, so a reader never sees part of one), then the
work records, then the index, and the manifest last, the commit point. A kill at any point
resumes on rerun: committed slices are not fetched again, and a dataset packed in the mirror
but not fully uploaded is uploaded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plumbing.atomic import atomic_write_json
from plumbing.console import progress_bar
from shards.format.manifest import INDEX_NAME, MANIFEST_NAME, SHARD_DIR, WORK_DIR
from shards.intake.pack import REJECTS_NAME

from .remote import RemoteFolder
from .signature_files import DATASET_SIGNATURES
from .workdir import CONFIG, DEDUP_NAME, PLAN, STAGING, WorkDir

SAVED = f"{WORK_DIR}/{CONFIG}"
RECORDS = (REJECTS_NAME, DEDUP_NAME, DATASET_SIGNATURES, SAVED, f"{WORK_DIR}/{PLAN}")


def default_scratch() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "anyres" / "curate"


@dataclass(frozen=True)
class RemoteOut:
    target: RemoteFolder
    mirror: Path

    @classmethod
    def parse(cls, url: str, scratch: str | Path | None = None) -> RemoteOut:
        target = RemoteFolder.parse(url)
        digest = hashlib.sha256(f"{target.fs.protocol}|{target.root}".encode()).hexdigest()[:16]
        return cls(target, Path(scratch or default_scratch()).absolute() / digest)

    @property
    def staging(self) -> RemoteFolder:
        return self.target.child(f"{WORK_DIR}/{STAGING}")

    def work(self) -> WorkDir:
        """The mirror's work folder, its slices committed at the URL."""
        return WorkDir.mirroring(self.mirror, self.staging)

    def manifest(self) -> dict[str, Any] | None:
        return self.target.read_json(MANIFEST_NAME)

    def saved(self) -> dict[str, Any] | None:
        return self.target.read_json(SAVED)

    def upload_config(self) -> None:
        self.target.put_file(self.mirror / SAVED, SAVED)

    def adopt_config(self) -> None:
        """A run begun on another machine: its config comes down, so the identity check and
        the committed slices carry over."""
        local = self.mirror / SAVED
        if local.exists():
            return
        saved = self.saved()
        if saved is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(local, saved, indent=2)

    def discard(self) -> None:
        for name in (MANIFEST_NAME, INDEX_NAME, SHARD_DIR, WORK_DIR):
            self.target.remove(name)

    def upload(self, files: Iterable[str], advance: Callable[[int], None]) -> None:
        """Upload the mirror's dataset: `files` (the shards, then the records) whole, then the
        index, then the manifest, last."""
        for name in [*files, INDEX_NAME, MANIFEST_NAME]:
            self.target.put_file(self.mirror / name, name)
            advance(1)
        self.target.remove(f"{WORK_DIR}/{STAGING}")
        self.target.abort_unfinished_uploads()


def publish(remote: RemoteOut) -> dict[str, Any]:
    """Upload the dataset packed in the mirror, the manifest last; then drop the mirror."""
    manifest = json.loads((remote.mirror / MANIFEST_NAME).read_bytes())
    files = [shard["name"] for shard in manifest["shards"]]
    files += [name for name in RECORDS if (remote.mirror / name).is_file()]
    with progress_bar("upload", len(files) + 2) as advance:
        remote.upload(files, advance)
    shutil.rmtree(remote.mirror, ignore_errors=True)
    return manifest
