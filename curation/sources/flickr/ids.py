"""Photos named by id: a list with one photo id a line, or the `<licence>_<photo id>.<ext>` lines
the paper's authors published for their datasets (`4_51234567890.jpg`), or photo page URLs.

Per id, two calls: flickr.photos.getInfo (licence, owner, title, dates, media, page URL: what
attribution needs, and what getSizes does not say), then, only for a photo whose licence is
allowed and which is not a video, flickr.photos.getSizes (every size's URL and dimensions) for
the same size choice as the search. The licence a list line names is only recorded: a licence
can change, and the current one is what the dataset may rely on.

Each looked-up id is one journal record, so an interrupted run resumes at the next line and
calls nothing twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from plumbing.digest import file_sha256
from shards import DatasetError

from .api import FlickrApiError, FlickrClient
from .discovery import SIZE_LABELS, as_int, choose_size
from .journal import Journal

LINE = re.compile(r"(?:(?P<license>\d+)_)?(?P<id>\d+)(?:\.[A-Za-z0-9]+)?")
PAGE_URL = re.compile(r"https?://(?:www\.)?flickr\.com/photos/[^/\s]+/(?P<id>\d+)")
CODE_OF_LABEL = {label: code for code, label in SIZE_LABELS.items()}
NOT_FOUND = 1  # Flickr's code for a photo id that does not exist or is not visible


def parse_line(text: str) -> tuple[str, int | None] | None:
    """(photo id, licence id the list names) of a list line; None if it names no photo."""
    if m := LINE.fullmatch(text):
        return m.group("id"), int(m.group("license")) if m.group("license") else None
    if m := PAGE_URL.match(text):
        return m.group("id"), None
    return None


def list_lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number from 1, stripped text) of lines that are neither blank nor comments."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            text = line.strip()
            if text and not text.startswith("#"):
                yield number, text


def info_fields(photo: dict[str, Any]) -> dict[str, Any]:
    """The record fields a getInfo answer gives, named as search records name them."""
    owner = photo.get("owner") or {}
    dates = photo.get("dates") or {}
    pages = [u.get("_content") for u in (photo.get("urls") or {}).get("url", []) if u.get("type") == "photopage"]
    return {
        "owner": owner.get("nsid"), "ownername": owner.get("username") or None,
        "path_alias": owner.get("path_alias") or None, "title": (photo.get("title") or {}).get("_content") or None,
        "license": as_int(photo.get("license")), "dateupload": as_int(dates.get("posted") or photo.get("dateuploaded")),
        "datetaken": dates.get("taken") or None, "datetakenunknown": str(dates.get("takenunknown")) == "1",
        "originalformat": photo.get("originalformat") or None, "media": photo.get("media") or "photo",
        "page_url": pages[0] if pages else None,
    }


def size_fields(answer: dict[str, Any]) -> dict[str, Any]:
    listed = (answer.get("sizes") or {}).get("size") or []
    sizes = [{"code": CODE_OF_LABEL.get(s.get("label"), str(s.get("label", "")).lower().replace(" ", "-")),
              "label": s.get("label"), "url": s.get("source"), "width": as_int(s.get("width")),
              "height": as_int(s.get("height"))}
             for s in listed if s.get("source") and s.get("media", "photo") == "photo"]
    return {"size": choose_size(sizes), "sizes_listed": [s["code"] for s in sizes]}


class IdsDiscovery:
    def __init__(self, path: str, licenses: tuple[int, ...], client: Callable[[], FlickrClient], journal: Journal):
        self.path, self.licenses, self.make_client, self.journal = path, licenses, client, journal

    def records(self) -> Iterator[dict[str, Any]]:
        digest = file_sha256(self.path)
        cursor = self.journal.cursor()
        if cursor is not None and cursor.get("list_sha256") != digest:
            raise DatasetError(f"{self.path} changed since this run started; rerun with --restart")
        seen: dict[str, int] = {}
        for record in self.journal.replay(cursor):
            if record.get("id"):
                seen.setdefault(record["id"], record["line"])
            yield record
        state = cursor or {"list_sha256": digest, "lines_done": 0, "photos": 0, "calls": 0, "done": False}
        if state["done"]:
            return
        client = None
        try:
            for number, text in list_lines(self.path):
                if number <= state["lines_done"]:
                    continue
                parsed = parse_line(text)
                if parsed is not None and parsed[0] not in seen:
                    client = client or self.make_client()
                record = self._lookup(client, state, number, text, parsed, seen)
                state["lines_done"], state["photos"] = number, state["photos"] + 1
                self.journal.commit([record], state)
                yield record
            state["done"] = True
            self.journal.commit([], state)
        finally:
            self.journal.close()

    def _lookup(self, client, state, number, text, parsed, seen) -> dict[str, Any]:
        if parsed is None:
            return {"line": number, "id": None, "listed": text[:200],
                    "error": ["bad-row", "neither a photo id, <licence>_<id>.<ext>, nor a photo page URL"]}
        photo_id, listed_license = parsed
        record: dict[str, Any] = {"line": number, "id": photo_id, "listed_license": listed_license, "error": None}
        if photo_id in seen:
            return {**record, "error": ["duplicate-url", f"photo {photo_id} is listed on line {seen[photo_id]} already"]}
        seen[photo_id] = number
        try:
            state["calls"] += 1
            record.update(info_fields(client.call("flickr.photos.getInfo", photo_id=photo_id)["photo"]))
            if record["license"] not in self.licenses or record["media"] != "photo":
                return record  # rejected before download; getSizes would be a wasted call
            state["calls"] += 1
            record.update(size_fields(client.call("flickr.photos.getSizes", photo_id=photo_id)))
        except FlickrApiError as exc:
            reason = "flickr-not-found" if exc.code == NOT_FOUND else "flickr-error"
            record["error"] = [reason, str(exc)]
        except (KeyError, TypeError, AttributeError):
            record["error"] = ["flickr-error", "the API's answer lacks the photo's fields"]
        return record
