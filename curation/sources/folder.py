"""The folder source: every image file under a folder, by the shared folder policy
(`shards.intake.admission.walk_images`), read from disk by the workers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shards import DatasetError
from shards.intake.admission import read_file, walk_images
from shards.intake.pack import read_attribution

from ..http import FetchConfig
from ..items import Item
from . import Opener


@dataclass(frozen=True)
class FolderSource:
    """Every image file under a folder, recursively, in sorted order; a folder link back to a
    folder on the current path is a loop and becomes a reject."""

    root: str
    kind: str = "folder"
    # A CSV of licences and owners per file (`anyres-shards pack --attribution`'s format: a
    # `path` column relative to the folder, then license, license_url, owner, title, ...).
    attribution: str | None = None

    def __post_init__(self) -> None:
        if not Path(self.root).is_dir():
            raise DatasetError(f"not a folder: {self.root}")
        if self.attribution is not None:
            read_attribution(self.attribution)  # a bad CSV ends the run before any work

    def describe(self) -> dict[str, Any]:
        described = {"source": "folder", "path": str(Path(self.root).absolute())}
        if self.attribution is not None:
            described["attribution"] = str(Path(self.attribution).absolute())
        return described

    def items(self) -> Iterator[Item]:
        given = read_attribution(self.attribution) if self.attribution is not None else {}
        for position, entry in enumerate(walk_images(self.root)):
            provenance = {"title": Path(entry.relative).stem, **given.get(entry.relative, {})}
            yield Item.for_file(position, entry.relative, entry.path, error=entry.error,
                                provenance=provenance if entry.error is None else {})

    def count(self) -> int | None:
        return sum(1 for _ in self.items())

    def opener(self, config: FetchConfig) -> Opener:
        max_bytes = config.max_bytes
        return lambda item: read_file(item.location, max_bytes)
