"""The work folder of a curation run: the one place its layout is spelled out.

DATASET/work/ holds
- `config.json`: the resolved config and the identity a rerun must match;
- `plan.json`: how many slices and items the input had, written once it was enumerated (for
  `status`: the run itself gets the plan from the fetch phase);
- `staging/slice-NNNNNN/`: one finished dataset per slice, with its `rejects.parquet` and its
  `done.json` (committed by renaming `slice-NNNNNN.part-<random>/`);
- `rejects.parquet`, `dedup.parquet`: every reject and every merge of the dataset;
- `flickr-<id>/`: a Flickr discovery journal;
- `add-<id>/`: an addition (`--add`), laid out like a work folder, plus `pack/` (its new
  shards before they move into the dataset) and what `shards.format.commit` stages for its commit.

A `WorkDir` is a plain value: it pickles, so slices on Ray workers carry it. For a dataset
at a URL (`remote.py`) it is the local mirror's, and `remote` is where slices commit instead.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plumbing.atomic import atomic_write_json
from shards import DatasetError
from shards.format.manifest import INDEX_NAME, SHARD_DIR, WORK_DIR

from .remote import (
    DONE_NAME,
    RemoteFolder,
    attempt_folder,
    pull_slice,
    remote_done,
    remote_markers,
    slice_name,
)

SLICE_REJECTS = "rejects.parquet"
DEDUP_NAME = f"{WORK_DIR}/dedup.parquet"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (ValueError, OSError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


@dataclass(frozen=True)
class WorkDir:
    root: Path
    remote: RemoteFolder | None = None  # the staging folder at the dataset's URL, for a remote --out

    @classmethod
    def of(cls, dataset: Path) -> WorkDir:
        return cls(Path(dataset) / WORK_DIR)

    # the run's own records
    @property
    def config(self) -> Path:
        return self.root / "config.json"

    def saved(self) -> dict[str, Any] | None:
        return read_json(self.config)

    def save_config(self, identity: dict[str, Any], resolved: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.config, {"identity": identity, "config": resolved}, indent=2)

    def save_plan(self, slices: int, items: int) -> None:
        atomic_write_json(self.root / "plan.json", {"slices": slices, "items": items})

    def plan(self) -> dict[str, Any] | None:
        return read_json(self.root / "plan.json")

    # staging: one folder per slice
    def slice(self, number: int) -> Path:
        return self.root / "staging" / slice_name(number)

    def slice_index(self, number: int) -> Path:
        return self.slice(number) / INDEX_NAME

    def slice_rejects(self, number: int) -> Path:
        return self.slice(number) / SLICE_REJECTS

    def done(self, number: int) -> dict[str, Any] | None:
        """The slice's done record: committed here, or (remote) committed at the URL."""
        local = read_done(self.slice(number))
        if local is not None or self.remote is None:
            return local
        return remote_done(self.remote, number)

    def slice_samples(self, number: int) -> str:
        """Where a committed slice's samples are read: its folder here, or its attempt at the URL."""
        done = read_done(self.slice(number))
        if self.remote is not None and done is not None and "attempt" in done:
            return self.remote.display(attempt_folder(number, done["attempt"]))
        return str(self.slice(number))

    def pull(self, numbers: range) -> None:
        """Bring slices committed at the URL into this folder (a no-op for a local --out)."""
        if self.remote is None:
            return
        for number in numbers:
            if read_done(self.slice(number)) is None and not pull_slice(self.remote, number, self.slice(number)):
                raise DatasetError(f"slice {number} is not committed at {self.remote.url}")

    def finished(self) -> Iterator[dict[str, Any]]:
        """The done records of committed slices, here and (remote) at the URL."""
        here = set()
        for marker in sorted((self.root / "staging").glob(f"slice-*/{DONE_NAME}")):
            here.add(marker.parent.name)
            yield json.loads(marker.read_bytes())
        if self.remote is not None:
            yield from remote_markers(self.remote, skip=here)

    def clear_parts(self) -> None:
        """Remove what unfinished attempts left behind."""
        for part in (self.root / "staging").glob("slice-*.part-*"):
            shutil.rmtree(part, ignore_errors=True)

    def drop_staged_bytes(self, numbers: range) -> None:
        """Once packed, the bytes live in the final shards; the small records stay."""
        for number in numbers:
            shutil.rmtree(self.slice(number) / SHARD_DIR, ignore_errors=True)

    # an addition's folder and what it stages for its commit
    def addition(self, ident: str) -> WorkDir:
        return WorkDir(self.root / f"add-{ident}")

    @property
    def pack(self) -> Path:
        return self.root / "pack"

    def flickr_journal(self, ident: str) -> Path:
        return self.root / f"flickr-{ident}"


def read_done(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / DONE_NAME).read_bytes())
    except FileNotFoundError:
        return None
