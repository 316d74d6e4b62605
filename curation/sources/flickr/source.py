"""The Flickr sources: a search (`anyres-curate flickr`) and a list of photo ids
(`anyres-curate flickr-ids`), both plugging into the pipeline like any other source.

Discovery, and every API call with it, runs on the driver inside `items()`, lazily, so slices go
to the fetch step while later pages are still being found; workers only download the chosen
size's URL with the pipeline's HTTP client. A photo that fails a check Flickr's answer already
settles (licence, media, size) becomes an item with its error set, so it is never downloaded and
still ends as a reject with its reason.

Attribution travels in every sample: photo id (`source_id`, key `flickr-<id>`), page URL
(`url`), owner, title, licence name and URL, date taken; the json `flickr` block adds the owner's
NSID, upload date, original format and which size was downloaded, at what URL.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shards import DatasetError

from ...http import FetchConfig, HttpClient
from ...items import Item
from .. import Opener
from .api import ApiConfig, Credentials, FlickrApiError, FlickrClient
from .discovery import SearchDiscovery, SearchQuery
from .ids import IdsDiscovery, list_lines
from .journal import Journal
from .licenses import ALL_RIGHTS_RESERVED, compare_with_api, describe_licenses, license_of


def page_url(record: dict[str, Any]) -> str:
    return record.get("page_url") or \
        f"https://www.flickr.com/photos/{record.get('path_alias') or record.get('owner')}/{record['id']}/"


def check_before_download(record: dict[str, Any], licenses: tuple[int, ...], min_side: int) -> tuple[str, str] | None:
    """Why a photo is rejected on what Flickr said of it, or None to download it."""
    lic = license_of(record["license"])
    if lic.id not in licenses:
        hint = "; name it in --licenses to take it" if lic.id == ALL_RIGHTS_RESERVED else ""
        return "license-not-allowed", f"{lic.name} is not among --licenses ({', '.join(describe_licenses(licenses))}){hint}"
    if record.get("media", "photo") != "photo":
        return "not-a-photo", f"Flickr lists it as a {record['media']}"
    size = record.get("size")
    if size is None:
        return "no-size", "Flickr lists no downloadable size"
    if size["width"] and size["height"] and min(size["width"], size["height"]) < min_side:
        return "too-small", (f"largest size on Flickr is {size['width']}x{size['height']} ({size['label']}), "
                             f"shorter side below {min_side}")
    return None


def make_item(position: int, record: dict[str, Any], licenses: tuple[int, ...], min_side: int) -> Item:
    if record.get("id") is None:  # a list line that names no photo
        return Item(position, "flickr", record["listed"], f"flickr-line-{record['line']}", "",
                    error=tuple(record["error"]))
    photo_id = record["id"]
    if record.get("license") is None:  # the lookup failed before the licence was known
        return Item(position, "flickr", photo_id, f"flickr-{photo_id}", "", error=tuple(record["error"]))
    lic = license_of(record["license"])
    size = record.get("size") or {}
    provenance = {"url": page_url(record), "license": lic.name, "license_url": lic.url,
                  "owner": record.get("ownername") or record.get("owner"), "title": record.get("title"),
                  "date_taken": None if record.get("datetakenunknown") else record.get("datetaken")}
    flickr = {
        "photo_id": photo_id, "page_url": page_url(record), "owner_nsid": record.get("owner"),
        "owner_name": record.get("ownername"), "license_id": lic.id, "license_title": lic.title,
        "date_upload": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record["dateupload"]))
        if record.get("dateupload") else None,
        "original_format": record.get("originalformat"), "size": size.get("code"), "size_label": size.get("label"),
        "size_width": size.get("width"), "size_height": size.get("height"), "download_url": size.get("url"),
        "sizes_listed": record.get("sizes_listed", []),
    }
    if record.get("listed_license") is not None:
        flickr["listed_license"] = license_of(record["listed_license"]).name
    error = tuple(record["error"]) if record.get("error") else check_before_download(record, licenses, min_side)
    return Item(position, "flickr", photo_id, f"flickr-{photo_id}", size.get("url", ""),
                provenance={k: v for k, v in provenance.items() if v}, error=error,
                extra={"flickr": {k: v for k, v in flickr.items() if v is not None}})


@dataclass(frozen=True, kw_only=True)
class _FlickrBase:
    api: ApiConfig
    credentials: Credentials = field(repr=False, compare=False)
    state: str  # the journal's folder, DATASET/work/flickr: derived from --out, so not identity
    min_side: int  # the run's --min-side, checked on Flickr's dimensions before any download
    kind: str = "flickr"

    def client(self) -> FlickrClient:
        return FlickrClient(self.credentials, self.api)

    def preflight(self) -> list[str]:
        """One call that proves the endpoint and the key work before anything starts, and checks
        the built-in licence table against Flickr's: the differences, one line each. A wrong
        endpoint is a bad call, so it gets one retry, not the run's patience."""
        api = dataclasses.replace(self.api, retries=min(self.api.retries, 1), backoff=min(self.api.backoff, 1.0))
        try:
            return compare_with_api(FlickrClient(self.credentials, api).call("flickr.photos.licenses.getInfo"))
        except FlickrApiError as exc:
            raise DatasetError(f"{self.api.endpoint} does not answer like the Flickr API ({exc}); "
                               "check --endpoint") from None

    def opener(self, config: FetchConfig) -> Opener:
        client = HttpClient(config)
        return lambda item: client.get(item.location)


@dataclass(frozen=True, kw_only=True)
class FlickrSource(_FlickrBase):
    query: SearchQuery

    def describe(self) -> dict[str, Any]:
        return {"source": "flickr", "method": "search", "endpoint": self.api.endpoint, **self.query.describe(),
                "licenses": describe_licenses(self.query.licenses)}

    def count(self) -> int | None:
        return None  # unknown until discovery ends

    def items(self):
        licenses, min_side = self.query.licenses, self.min_side
        discovery = SearchDiscovery(self.query, self.client, Journal(self.state),
                                    accept=lambda r: check_before_download(r, licenses, min_side) is None)
        for position, record in enumerate(discovery.records()):
            yield make_item(position, record, licenses, min_side)


@dataclass(frozen=True, kw_only=True)
class FlickrIdsSource(_FlickrBase):
    path: str
    licenses: tuple[int, ...]

    def __post_init__(self) -> None:
        if not Path(self.path).is_file():
            raise DatasetError(f"no such file: {self.path}")

    def describe(self) -> dict[str, Any]:
        return {"source": "flickr", "method": "ids", "endpoint": self.api.endpoint,
                "path": str(Path(self.path).absolute()), "licenses": describe_licenses(self.licenses)}

    def count(self) -> int | None:
        return sum(1 for _ in list_lines(self.path))

    def items(self):
        discovery = IdsDiscovery(self.path, self.licenses, self.client, Journal(self.state))
        for position, record in enumerate(discovery.records()):
            yield make_item(position, record, self.licenses, self.min_side)
