"""The discovery journal: what a Flickr source has found so far, kept in the work folder so that
an interrupted run resumes where it stopped, with the same items in the same places.

`photos.jsonl` holds one record per photo found, in the order found (an item's position is its
line); `cursor.json` says how far discovery got and how many bytes of the log it covers. A page
of records is appended to the log and flushed to disk first, then the cursor is replaced
atomically. On resume the log is cut back to the length the cursor names: a page appended by a
run killed before its cursor was written is fetched again, never counted twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plumbing.atomic import atomic_write_json
from shards import DatasetError

LOG_NAME = "photos.jsonl"
CURSOR_NAME = "cursor.json"


class Journal:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.log_path = self.folder / LOG_NAME
        self.cursor_path = self.folder / CURSOR_NAME
        self._log = None
        self._length = 0

    def cursor(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.cursor_path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read the discovery cursor {self.cursor_path}: {exc}; "
                               "rerun with --restart to discover again") from None

    def replay(self, cursor: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
        """The records the cursor covers, streaming (a big search logs millions)."""
        length = cursor["log_bytes"] if cursor else 0
        if not length:
            return
        try:
            f = open(self.log_path, "rb")
        except FileNotFoundError:
            raise DatasetError(f"{self.log_path} is missing though the cursor counts {length} bytes; "
                               "rerun with --restart to discover again") from None
        with f:
            done = 0
            for line in f:
                if done + len(line) > length:
                    break
                done += len(line)
                yield json.loads(line)
        if done != length:
            raise DatasetError(f"{self.log_path} is shorter than its cursor says; rerun with --restart")

    def commit(self, records: list[dict[str, Any]], cursor: dict[str, Any]) -> None:
        """Append `records`, then save `cursor` (with the log's new length) atomically."""
        if self._log is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._length = (self.cursor() or {}).get("log_bytes", 0)
            self._log = open(self.log_path, "ab")
            self._log.truncate(self._length)  # drop a page a killed run appended past its cursor
        if records:
            data = b"".join(json.dumps(r, separators=(",", ":"), sort_keys=True).encode() + b"\n" for r in records)
            self._log.write(data)
            self._log.flush()
            os.fsync(self._log.fileno())
            self._length += len(data)
        atomic_write_json(self.cursor_path, {**cursor, "log_bytes": self._length}, indent=1)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def discovery_status(work: Path) -> list[dict[str, Any]]:
    """How far each Flickr discovery in a work folder got, for `anyres-curate status`."""
    found = []
    for path in sorted(Path(work).glob("flickr-*/" + CURSOR_NAME)):
        cursor = json.loads(path.read_bytes())
        found.append({"journal": path.parent.name, "done": cursor.get("done", False),
                      "photos": cursor.get("photos", 0), "windows_done": len(cursor.get("windows", [])),
                      "windows_left": len(cursor.get("queue", [])), "lines_done": cursor.get("lines_done")})
    return found
