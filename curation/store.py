"""The slice store: where a run's fetch slices are staged and committed, behind the work folder.

A slice is written into a private folder as a complete dataset of its own, then committed at
once; a committed slice is never redone, an uncommitted one is redone from scratch, so a killed
run loses nothing and writes nothing twice. Two stores keep that promise the same way, chosen
once when the run starts:

- `LocalSliceStore`, for a dataset in a folder: the slice is written to
  `staging/slice-NNNNNN.part-<random>/` and renamed to `slice-NNNNNN`, the commit. Private
  folders also keep a task that outlived its driver (an orphaned Ray worker) from writing into
  the folder its rerun writes.
- `UrlSliceStore`, for a dataset at a URL (object stores have no rename): the slice is written
  to a local temporary folder on whichever node runs it, uploaded under
  `work/staging/slice-NNNNNN/<attempt>/`, and committed by one small object written last, the
  marker `slice-NNNNNN/done.json` naming the attempt. An attempt without a marker (a killed
  task, a lost node) is never read. The driver pulls committed slices' records (index,
  rejects, signatures) into its local mirror; their samples stay at the URL and are read there,
  so the driver's disk holds the dataset once.

Both pickle, so slice tasks on any node carry them. The driver reads a slice's records from
`records(n)`, a local folder, and its samples from `samples(n)`, a path or URL any node can read.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shards import DatasetError
from shards.format.manifest import SHARD_DIR

from .remote import RemoteFolder

DONE_NAME = "done.json"  # a slice's completion record, in its folder here and as its marker at a URL


def slice_name(number: int) -> str:
    """A slice's folder name, in the work folder and at the URL."""
    return f"slice-{number:06d}"


def read_done(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / DONE_NAME).read_bytes())
    except FileNotFoundError:
        return None


class SliceStore(Protocol):
    def done(self, number: int) -> dict[str, Any] | None:
        """The committed slice's done record; None while it is not committed."""

    def begin(self, number: int) -> Path:
        """A private local folder for one attempt at the slice, on the node that runs it."""

    def commit(self, number: int, folder: Path, done: dict[str, Any]) -> dict[str, Any]:
        """Commit the finished attempt in `folder`; the slice's done record."""

    def gather(self, numbers: range) -> None:
        """Bring the committed slices' records to `records(n)` on this machine."""

    def records(self, number: int) -> Path:
        """The local folder holding a committed slice's index, rejects and signatures."""

    def samples(self, number: int) -> str:
        """Where a committed slice's samples are read: a path or a URL."""

    def finished(self) -> Iterator[dict[str, Any]]:
        """The done records of every committed slice."""

    def clear_parts(self) -> None:
        """Remove what unfinished attempts left on this machine."""

    def drop_samples(self, number: int) -> None:
        """Once packed, a slice's samples live in the final shards; its small records stay."""


@dataclass(frozen=True)
class LocalSliceStore:
    root: Path  # the work folder's staging/

    def records(self, number: int) -> Path:
        return self.root / slice_name(number)

    def done(self, number: int) -> dict[str, Any] | None:
        return read_done(self.records(number))

    def begin(self, number: int) -> Path:
        final = self.records(number)
        return final.with_name(f"{final.name}.part-{uuid.uuid4().hex[:12]}")

    def commit(self, number: int, folder: Path, done: dict[str, Any]) -> dict[str, Any]:
        final = self.records(number)
        try:
            os.rename(folder, final)
        except OSError:  # committed meanwhile by another attempt at the same slice: keep that one
            shutil.rmtree(folder, ignore_errors=True)
            existing = read_done(final)
            if existing is None:
                raise
            return existing
        return done

    def gather(self, numbers: range) -> None:
        pass  # committed here: nothing to bring

    def samples(self, number: int) -> str:
        return str(self.records(number))

    def markers(self) -> list[Path]:
        """Committed slices' done records; an attempt's folder has one just before its rename."""
        return sorted(p for p in self.root.glob(f"slice-*/{DONE_NAME}") if ".part-" not in p.parent.name)

    def finished(self) -> Iterator[dict[str, Any]]:
        for marker in self.markers():
            yield json.loads(marker.read_bytes())

    def clear_parts(self) -> None:
        for part in self.root.glob("slice-*.part-*"):
            shutil.rmtree(part, ignore_errors=True)

    def drop_samples(self, number: int) -> None:
        shutil.rmtree(self.records(number) / SHARD_DIR, ignore_errors=True)


@dataclass(frozen=True)
class UrlSliceStore:
    remote: RemoteFolder  # work/staging at the dataset's URL
    mirror: LocalSliceStore  # the driver's copy of committed slices' records

    def records(self, number: int) -> Path:
        return self.mirror.records(number)

    def done(self, number: int) -> dict[str, Any] | None:
        pulled = self.mirror.done(number)
        return pulled if pulled is not None else self.marker(number)

    def marker(self, number: int) -> dict[str, Any] | None:
        marker = self.remote.read_json(f"{slice_name(number)}/{DONE_NAME}")
        if marker is None:
            return None
        if not isinstance(marker.get("attempt"), str) or not marker["attempt"].isalnum():
            raise DatasetError(f"{self.remote.display(f'{slice_name(number)}/{DONE_NAME}')} names no attempt")
        return marker

    def begin(self, number: int) -> Path:
        # the local temporary directory: the driver's mirror path means nothing on another machine
        return Path(tempfile.mkdtemp(prefix=f"anyres-{slice_name(number)}-"))

    def commit(self, number: int, folder: Path, done: dict[str, Any]) -> dict[str, Any]:
        """Upload the attempt under a name of its own, then its marker: the commit."""
        attempt = os.urandom(6).hex()
        try:
            self.remote.put_folder(folder, attempt_folder(number, attempt))
            self.remote.put_bytes(f"{slice_name(number)}/{DONE_NAME}", json.dumps({**done, "attempt": attempt}).encode())
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return done

    def gather(self, numbers: range) -> None:
        for number in numbers:
            if self.mirror.done(number) is None and not self.pull(number):
                raise DatasetError(f"slice {number} is not committed at {self.remote.url}")

    def pull(self, number: int) -> bool:
        """Download a committed slice's records into the mirror, its marker as `done.json`;
        False where none is committed yet. Its shards stay at the URL."""
        marker = self.marker(number)
        if marker is None:
            return False
        final = self.records(number)
        final.parent.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(prefix=f"{final.name}.part-pull", dir=final.parent))
        try:
            self.remote.get_folder(attempt_folder(number, marker["attempt"]), part, skip=SHARD_DIR)
            (part / DONE_NAME).write_text(json.dumps(marker))
            os.replace(part, final)
        finally:
            shutil.rmtree(part, ignore_errors=True)
        return True

    def samples(self, number: int) -> str:
        done = self.mirror.done(number)
        if done is not None and "attempt" in done:
            return self.remote.display(attempt_folder(number, done["attempt"]))
        return self.mirror.samples(number)

    def finished(self) -> Iterator[dict[str, Any]]:
        """Those pulled into the mirror, then those only committed at the URL."""
        here = set()
        for marker in self.mirror.markers():
            here.add(marker.parent.name)
            yield json.loads(marker.read_bytes())
        for path in self.remote.glob(f"slice-*/{DONE_NAME}"):
            name = path.split("/")[0]
            if name not in here and (marker := self.remote.read_json(f"{name}/{DONE_NAME}")) is not None:
                yield marker

    def clear_parts(self) -> None:
        self.mirror.clear_parts()

    def drop_samples(self, number: int) -> None:
        pass  # kept at the URL until publishing: a run resumed on another machine packs from them


def attempt_folder(number: int, attempt: str) -> str:
    return f"{slice_name(number)}/{attempt}"
