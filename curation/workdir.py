"""The work folder of a curation run: the one place its layout is spelled out.

DATASET/work/ holds
- `config.json`: the resolved config and the identity a rerun must match;
- `plan.json`: how many slices and items the input had, written once it was enumerated (for
  `status`: the run itself gets the plan from the fetch phase);
- `staging/slice-NNNNNN/`: one finished dataset per slice, with its `rejects.parquet` and its
  `done.json` (committed by renaming `slice-NNNNNN.part-<random>/`; those two names belong to
  the commit protocol, so `store.py` spells them);
- `rejects.parquet`, `dedup.parquet`: every reject and every merge of the dataset;
- `flickr-<id>/`: a Flickr discovery journal;
- `add-<id>/`: an addition (`--add`), laid out like a work folder, plus `pack/` (its new
  shards before they move into the dataset) and what `shards.format.commit` stages for its commit.

A `WorkDir` is a plain value: it pickles, so slices on Ray workers carry it. Its slices go
through a slice store (`store.py`), chosen once: a local one that commits by rename, or, for a
dataset at a URL, one that commits at the URL while this folder is the local mirror's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plumbing.atomic import atomic_write_json
from shards import DatasetError
from shards.format.manifest import INDEX_NAME, WORK_DIR

from .remote import RemoteFolder
from .store import LocalSliceStore, SliceStore, UrlSliceStore

CONFIG = "config.json"  # in the work folder, as are the two below
PLAN = "plan.json"
STAGING = "staging"
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
    store: SliceStore = None  # type: ignore[assignment]  # None: its own staging/, committed by rename

    def __post_init__(self) -> None:
        if self.store is None:
            object.__setattr__(self, "store", LocalSliceStore(self.root / STAGING))

    @classmethod
    def of(cls, dataset: Path) -> WorkDir:
        return cls(Path(dataset) / WORK_DIR)

    @classmethod
    def mirroring(cls, mirror: Path, staging: RemoteFolder) -> WorkDir:
        """The work folder of a local mirror whose slices commit at the URL's `staging`."""
        root = Path(mirror) / WORK_DIR
        return cls(root, UrlSliceStore(staging, LocalSliceStore(root / STAGING)))

    # the run's own records
    @property
    def config(self) -> Path:
        return self.root / CONFIG

    def saved(self) -> dict[str, Any] | None:
        return read_json(self.config)

    def save_config(self, identity: dict[str, Any], resolved: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.config, {"identity": identity, "config": resolved}, indent=2)

    def save_plan(self, slices: int, items: int) -> None:
        atomic_write_json(self.root / PLAN, {"slices": slices, "items": items})

    def plan(self) -> dict[str, Any] | None:
        return read_json(self.root / PLAN)

    # staging: one folder per slice, through the store
    def slice(self, number: int) -> Path:
        return self.store.records(number)

    def slice_index(self, number: int) -> Path:
        return self.slice(number) / INDEX_NAME

    def slice_rejects(self, number: int) -> Path:
        return self.slice(number) / SLICE_REJECTS

    def done(self, number: int) -> dict[str, Any] | None:
        return self.store.done(number)

    def slice_samples(self, number: int) -> str:
        return self.store.samples(number)

    def pull(self, numbers: range) -> None:
        self.store.gather(numbers)

    def finished(self) -> Iterator[dict[str, Any]]:
        return self.store.finished()

    def clear_parts(self) -> None:
        self.store.clear_parts()

    def drop_staged_bytes(self, numbers: range) -> None:
        for number in numbers:
            self.store.drop_samples(number)

    # an addition's folder and what it stages for its commit
    def addition(self, ident: str) -> WorkDir:
        return WorkDir(self.root / f"add-{ident}")

    @property
    def pack(self) -> Path:
        return self.root / "pack"

    def flickr_journal(self, ident: str) -> Path:
        return self.root / f"flickr-{ident}"
