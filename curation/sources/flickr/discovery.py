"""Finding photos with flickr.photos.search past its cap of 4000 results per query.

Flickr answers a search with at most 4000 distinct results (pages past them repeat earlier
ones), however large the `total` it reports. So discovery splits the upload-date range into
windows and reads each window's total from its first page: a window whose total is over the cap
is bisected by time until every part can be paged fully; one that fits is paged to its end.
Windows are inclusive ranges of whole seconds, [lo, mid] and [mid + 1, hi], so no photo falls in
two; photos are still deduplicated by id across windows and pages, since the API repeats results
when uploads shift a page boundary. Pages are asked in upload order, so a window is stable.

One search call returns everything a sample needs (the extras): every size's URL and dimensions,
the licence, owner, title, dates and original format, so there is no call per photo. A record
keeps only the size to download: the original where the owner allows it (only then is url_o
listed), else the largest size listed.

Progress goes to a `Journal` after every page: the queue of windows, the window being paged and
its pages done, the windows finished with their totals.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from shards import DatasetError

from .api import FlickrApiError, FlickrClient
from .journal import Journal
from .licenses import REUSE

RESULT_CAP = 4000  # distinct results Flickr returns for one query
MAX_PER_PAGE = 500
FLICKR_START = calendar.timegm((2004, 1, 1, 0, 0, 0))  # before the first upload (February 2004)

# Size suffixes, largest first, and Flickr's labels for them (getSizes names sizes by label).
SIZE_LABELS = {"o": "Original", "6k": "X-Large 6K", "5k": "X-Large 5K", "4k": "X-Large 4K",
               "3k": "X-Large 3K", "k": "Large 2048", "h": "Large 1600", "l": "Large",
               "c": "Medium 800", "z": "Medium 640"}
EXTRAS = ",".join(["license", "owner_name", "path_alias", "date_upload", "date_taken", "original_format",
                   "media", *(f"url_{code}" for code in SIZE_LABELS)])


def as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def choose_size(sizes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The original if listed (the owner allows its download), else the largest by area."""
    if not sizes:
        return None
    original = [s for s in sizes if s["code"] == "o"]
    return original[0] if original else max(sizes, key=lambda s: s["width"] * s["height"])


def search_record(photo: dict[str, Any]) -> dict[str, Any]:
    """What the journal keeps of one search result."""
    sizes = [{"code": code, "label": label, "url": photo[f"url_{code}"],
              "width": as_int(photo.get(f"width_{code}")), "height": as_int(photo.get(f"height_{code}"))}
             for code, label in SIZE_LABELS.items() if photo.get(f"url_{code}")]
    return {
        "id": str(photo["id"]), "owner": photo.get("owner"), "ownername": photo.get("ownername") or None,
        "path_alias": photo.get("pathalias") or None, "title": photo.get("title") or None,
        "license": as_int(photo.get("license")), "dateupload": as_int(photo.get("dateupload")),
        "datetaken": photo.get("datetaken") or None, "datetakenunknown": str(photo.get("datetakenunknown")) == "1",
        "originalformat": photo.get("originalformat") or None, "media": photo.get("media") or "photo",
        "size": choose_size(sizes), "sizes_listed": [s["code"] for s in sizes],
    }


@dataclass(frozen=True)
class SearchQuery:
    text: str | None = None
    tags: tuple[str, ...] = ()
    tag_mode: str = "any"  # any or all of the tags
    licenses: tuple[int, ...] = REUSE
    min_upload_date: int = FLICKR_START  # unix seconds, inclusive
    max_upload_date: int | None = None  # inclusive; None: when discovery first ran (saved in the cursor)
    max_photos: int | None = None  # stop once this many photos pass the checks made before download
    per_page: int = MAX_PER_PAGE
    result_cap: int = RESULT_CAP  # lower only for a server with a smaller cap (tests)

    def __post_init__(self) -> None:
        if not (self.text or "").strip() and not self.tags:
            raise DatasetError("give --text or --tags: Flickr refuses a search without either")
        if self.tag_mode not in ("any", "all"):
            raise DatasetError(f"tag mode must be any or all, not {self.tag_mode!r}")
        if not 1 <= self.per_page <= MAX_PER_PAGE or self.result_cap < self.per_page:
            raise DatasetError(f"per page must be 1..{MAX_PER_PAGE} and no more than the result cap")
        if self.max_upload_date is not None and self.max_upload_date < self.min_upload_date:
            raise DatasetError("--max-upload-date is before --min-upload-date")

    def params(self) -> dict[str, Any]:
        return {"text": self.text or None, "tags": ",".join(self.tags) or None,
                "tag_mode": self.tag_mode if self.tags else None,
                "license": ",".join(map(str, self.licenses)), "media": "photos", "extras": EXTRAS,
                "sort": "date-posted-asc", "per_page": self.per_page}

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "tags": list(self.tags), "licenses": list(self.licenses)}


class SearchDiscovery:
    """Records of the photos a query matches, each once: first those the journal holds, then
    new ones as pages come in. `accept(record)` says whether a photo passes the checks made
    before download; `max_photos` counts those."""

    def __init__(self, query: SearchQuery, client: Callable[[], FlickrClient], journal: Journal,
                 accept: Callable[[dict[str, Any]], bool]):
        self.query, self.make_client, self.journal, self.accept = query, client, journal, accept

    def records(self) -> Iterator[dict[str, Any]]:
        cursor = self.journal.cursor()
        if cursor is not None and cursor.get("query") != self.query.describe():
            raise DatasetError(f"{self.journal.folder} holds the discovery of another query; rerun with --restart")
        seen: set[str] = set()
        for record in self.journal.replay(cursor):
            seen.add(record["id"])
            yield record
        state = cursor or self._fresh()
        client = None
        try:
            while not state["done"]:
                if not state["queue"]:
                    state["done"] = True
                    self.journal.commit([], state)
                    break
                client = client or self.make_client()
                yield from self._step(client, state, seen)
        finally:
            self.journal.close()

    def _fresh(self) -> dict[str, Any]:
        high = self.query.max_upload_date if self.query.max_upload_date is not None else int(time.time())
        return {"query": self.query.describe(), "range": [self.query.min_upload_date, high],
                "queue": [[self.query.min_upload_date, high]], "current": None, "windows": [],
                "bisected": 0, "truncated": [], "photos": 0, "accepted": 0, "repeats": 0, "calls": 0,
                "done": False}

    def _search(self, client: FlickrClient, state: dict[str, Any], lo: int, hi: int, page: int) -> dict[str, Any]:
        state["calls"] += 1
        try:
            answer = client.call("flickr.photos.search", **self.query.params(), min_upload_date=lo,
                                 max_upload_date=hi, page=page)
        except FlickrApiError as exc:
            raise DatasetError(f"Flickr refused the search: {exc}") from None
        if not isinstance(answer.get("photos"), dict):
            raise DatasetError("Flickr's search answer has no photos; is --endpoint a Flickr REST API?")
        return answer["photos"]

    def _step(self, client: FlickrClient, state: dict[str, Any], seen: set[str]) -> list[dict[str, Any]]:
        """One call: a window's first page (which may split it) or its next page."""
        lo, hi = state["queue"][0]
        current = state["current"]
        photos = self._search(client, state, lo, hi, current["pages_done"] + 1 if current else 1)
        if current is None:
            total = as_int(photos.get("total"))
            if total > self.query.result_cap and hi > lo:
                mid = (lo + hi) // 2
                state["queue"][0:1] = [[lo, mid], [mid + 1, hi]]
                state["bisected"] += 1
                self.journal.commit([], state)
                return []
            if total > self.query.result_cap:  # more than the cap in one second: only the cap is reachable
                state["truncated"].append([lo, hi, total])
            pages = max(1, math.ceil(min(total, self.query.result_cap) / self.query.per_page))
            current = state["current"] = {"window": [lo, hi], "total": total, "pages": pages, "pages_done": 0}
        new = []
        listed = photos.get("photo") or []
        for photo in listed:
            if str(photo["id"]) in seen:
                state["repeats"] += 1
                continue
            seen.add(str(photo["id"]))
            record = search_record(photo)
            new.append(record)
            state["accepted"] += bool(self.accept(record))
            if self.query.max_photos is not None and state["accepted"] >= self.query.max_photos:
                state["done"] = True
                break
        current["pages_done"] += 1
        if current["pages_done"] >= current["pages"] or not listed:
            state["windows"].append([lo, hi, current["total"], current["pages_done"]])
            state["queue"].pop(0)
            state["current"] = None
        state["photos"] += len(new)
        self.journal.commit(new, state)
        return new
