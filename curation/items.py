"""What flows through the pipeline: input items, and the rejects that are failures as data.

An `Item` is one image to fetch, with its stable key (DESIGN.md 2) and its place in the input;
a source that already knows an item is bad (a symlink loop, an empty URL cell) says so in
`error`, so that the item still travels, keeps its place and ends as a recorded reject.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from shards.intake.admission import file_key
from shards.intake.pack import REJECT_SCHEMA

# The shards pack layout (source_id, reason, detail) first, then where the item came from.
REJECTS_SCHEMA = pa.schema(
    list(REJECT_SCHEMA) + [("key", pa.string()), ("source", pa.string()), ("position", pa.int64())]
)


def url_key(url: str) -> str:
    return "url-" + hashlib.sha1(url.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Item:
    position: int  # row in the input: the first occurrence of a key wins, packing keeps this order
    source: str  # "folder", "url", "flickr"
    source_id: str  # relative path, URL, photo id
    key: str
    location: str  # what the source's opener reads: an absolute path or a URL
    provenance: dict[str, str] = field(default_factory=dict)
    error: tuple[str, str] | None = None  # (reason, detail) known before any fetch
    extra: dict[str, Any] = field(default_factory=dict)  # json-only metadata, e.g. the Flickr size taken

    @classmethod
    def for_file(cls, position: int, relative: str, absolute: str, **kw) -> Item:
        return cls(position, "folder", relative, file_key(relative), absolute, **kw)

    @classmethod
    def for_url(cls, position: int, url: str, **kw) -> Item:
        return cls(position, "url", url, url_key(url), url, **kw)


class FetchError(Exception):
    """An item that could not be read; `reason` is a short tag, `retryable` says whether a
    later attempt may succeed (a timeout, a 503) or not (a 404, a bad scheme)."""

    def __init__(self, reason: str, detail: str, retryable: bool = False, retry_after: float | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after


def reject_record(item: Item, reason: str, detail: str) -> dict:
    return {"source_id": item.source_id, "reason": reason, "detail": detail, "key": item.key,
            "source": item.source, "position": item.position}
