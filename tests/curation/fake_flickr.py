"""A fake Flickr on 127.0.0.1: the REST API that `flickrapi` talks to, and the photo host.

It answers the OAuth-signed POSTs the real client sends (the HMAC-SHA1 signature is checked with
the app's secret, as Flickr does), and implements what discovery depends on: the licence,
upload-date, text, tag and media filters; paging, with a result cap past which pages repeat
earlier results while `total` stays true; repeats across page boundaries; photos whose owner
allows no original download, and small originals; transient failures on demand (HTTP 503 and
429, API error 105, dropped connections); an invalid key (error 100); and the image bytes of
every size it lists, made from the test corpus at exactly the dimensions it advertises.
"""

from __future__ import annotations

import calendar
import http.server
import json
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

from oauthlib.oauth1.rfc5849 import signature, utils

from curation.sources.flickr.licenses import LICENSES

from .corpus import jpeg

KEY = "fake-key-0123456789abcdef"
SECRET = "fake-secret-fedcba987654"
LABELS = {"o": "Original", "k": "Large 2048", "h": "Large 1600", "l": "Large", "c": "Medium 800",
          "z": "Medium 640", "n": "Small 320", "q": "Large Square"}


def day(y: int, m: int, d: int) -> int:
    return calendar.timegm((y, m, d, 0, 0, 0))


@dataclass
class FakePhoto:
    id: str
    upload: int
    license: int = 4
    title: str = "mountain"
    tags: tuple[str, ...] = ("mountain",)
    sizes: dict[str, tuple[int, int]] = field(default_factory=lambda: {"o": (480, 360), "l": (400, 300),
                                                                       "z": (320, 240)})
    media: str = "photo"
    owner: str = "12037949754@N01"
    ownername: str = "Ansel A."
    path_alias: str | None = "ansel"
    taken: str = "2011-06-01 10:20:30"
    seed: int = 0


@cache
def image_bytes(seed: int, width: int, height: int) -> bytes:
    return jpeg(seed, width, height)


class FakeFlickr:
    def __init__(self, photos: list[FakePhoto], cap: int = 4000, overlap: bool = True,
                 key: str = KEY, secret: str = SECRET):
        self.photos = sorted(photos, key=lambda p: (p.upload, int(p.id)))
        self.by_id = {p.id: p for p in photos}
        self.cap, self.overlap, self.key, self.secret = cap, overlap, key, secret
        self.calls: list[dict] = []  # every API request: time, method, params, outcome
        self.failures: list[str] = []  # injected, one per call: http-503, http-429, api-105, drop
        self.fail_after: int | None = None  # answer HTTP 503 to every call after this many answered
        self.answered = 0
        self.raw: list[bytes] = []  # every request as it came over the wire
        self.image_hits: Counter = Counter()
        self.licenses_answer = {"licenses": {"license": [{"id": lic.id, "name": lic.title, "url": lic.url or ""}
                                                         for lic in LICENSES.values()]}, "stat": "ok"}
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with fake.lock:
                    fake.raw.append(str(self.headers).encode() + body)
                fake.api(self, body)

            def do_GET(self):
                fake.image(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.endpoint = f"{self.base}/services/rest/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def image_url(self, photo: FakePhoto, code: str) -> str:
        return f"{self.base}/img/{photo.id}_{code}.jpg"

    def methods(self, name: str) -> list[dict]:
        return [c for c in self.calls if c["method"] == name and c["outcome"] == "ok"]

    # -- the REST API --------------------------------------------------------------------------

    def api(self, h, body: bytes) -> None:
        if urlsplit(h.path).path != "/services/rest/":
            return self.send(h, 404, b"<html>no such page</html>", "text/html")
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        call = {"t": time.monotonic(), "method": params.get("method"), "params": params, "outcome": "ok"}
        with self.lock:
            self.calls.append(call)
            failure = self.failures.pop(0) if self.failures else None
            if self.fail_after is not None and self.answered >= self.fail_after:
                failure = "http-503"
        if failure:
            call["outcome"] = failure
            if failure == "drop":
                h.close_connection = True
                h.connection.close()
                return None
            if failure.startswith("http-"):
                return self.send(h, int(failure[5:]), b"<html>busy</html>", "text/html")
            return self.reply(h, {"stat": "fail", "code": int(failure[4:]), "message": "Service currently unavailable"})
        problem = self.check_signature(h, body)
        if problem:
            call["outcome"] = f"api-{problem['code']}"
            return self.reply(h, {"stat": "fail", **problem})
        if params.get("format") != "json" or params.get("nojsoncallback") != "1":
            return self.reply(h, {"stat": "fail", "code": 111, "message": "Format not found"})
        handler = {"flickr.photos.search": self.search, "flickr.photos.getInfo": self.get_info,
                   "flickr.photos.getSizes": self.get_sizes,
                   "flickr.photos.licenses.getInfo": lambda p: self.licenses_answer}.get(params.get("method"))
        answer = handler(params) if handler else {"stat": "fail", "code": 112, "message": "Method not found"}
        if answer.get("stat") == "fail":
            call["outcome"] = f"api-{answer['code']}"
        with self.lock:
            self.answered += 1
        return self.reply(h, answer)

    def check_signature(self, h, body: bytes) -> dict | None:
        header = h.headers.get("Authorization", "")
        if not header.startswith("OAuth "):
            return {"code": 100, "message": "Invalid API Key (Key not found)"}
        oauth = dict(utils.parse_authorization_header(header))
        if oauth.get("oauth_consumer_key") != self.key:
            return {"code": 100, "message": "Invalid API Key (Key has invalid format)"}
        collected = signature.collect_parameters(uri_query=urlsplit(h.path).query,
                                                 body=parse_qsl(body.decode(), keep_blank_values=True),
                                                 headers={"Authorization": header})
        base = signature.signature_base_string(
            "POST", signature.base_string_uri(f"http://{h.headers['Host']}{h.path}"),
            signature.normalize_parameters(collected))
        app = SimpleNamespace(client_secret=self.secret, resource_owner_secret="")
        if signature.sign_hmac_sha1_with_client(base, app) != utils.unescape(oauth.get("oauth_signature", "")):
            return {"code": 96, "message": "Invalid signature"}
        return None

    def matches(self, p: dict) -> list[FakePhoto]:
        licenses = {int(x) for x in p["license"].split(",")} if p.get("license") else None
        low, high = int(p.get("min_upload_date", 0)), int(p.get("max_upload_date", 2**40))
        words = p.get("text", "").lower().split()
        tags = [t for t in p.get("tags", "").lower().split(",") if t]
        found = []
        for photo in self.photos:
            haystack = (photo.title + " " + " ".join(photo.tags)).lower()
            if licenses is not None and photo.license not in licenses:
                continue
            if not low <= photo.upload <= high or (p.get("media") == "photos" and photo.media != "photo"):
                continue
            if any(w not in haystack for w in words):
                continue
            if tags and not (all if p.get("tag_mode") == "all" else any)(t in photo.tags for t in tags):
                continue
            found.append(photo)
        return found

    def search(self, p: dict) -> dict:
        if not p.get("text") and not p.get("tags"):
            return {"stat": "fail", "code": 3, "message": "Parameterless searches have been disabled."}
        found = self.matches(p)
        per_page = min(int(p.get("per_page", 100)), 500)
        page = int(p.get("page", 1))
        reachable = max(1, self.cap // per_page)
        if page > reachable:  # past the cap Flickr serves earlier results again
            page = (page - 1) % reachable + 1
        start = (page - 1) * per_page
        listed = found[start:start + per_page]
        if self.overlap and start > 0 and listed:  # the previous page's last photo again
            listed = [found[start - 1], *listed]
        extras = set(p.get("extras", "").split(","))
        return {"photos": {"page": int(p.get("page", 1)), "pages": math.ceil(len(found) / per_page),
                           "perpage": per_page, "total": len(found),
                           "photo": [self.search_entry(photo, extras) for photo in listed]}, "stat": "ok"}

    def search_entry(self, photo: FakePhoto, extras: set[str]) -> dict:
        entry = {"id": photo.id, "owner": photo.owner, "secret": "abc", "server": "65535", "farm": 66,
                 "title": photo.title, "ispublic": 1, "isfriend": 0, "isfamily": 0}
        if "license" in extras:
            entry["license"] = str(photo.license)
        if "owner_name" in extras:
            entry["ownername"] = photo.ownername
        if "path_alias" in extras:
            entry["pathalias"] = photo.path_alias
        if "date_upload" in extras:
            entry["dateupload"] = str(photo.upload)
        if "date_taken" in extras:
            entry.update(datetaken=photo.taken, datetakengranularity=0, datetakenunknown="0")
        if "original_format" in extras and "o" in photo.sizes:
            entry.update(originalsecret="def", originalformat="jpg")
        if "media" in extras:
            entry.update(media=photo.media, media_status="ready")
        for code, (w, h) in photo.sizes.items():
            if f"url_{code}" in extras:
                entry.update({f"url_{code}": self.image_url(photo, code), f"width_{code}": w, f"height_{code}": h})
        return entry

    def get_info(self, p: dict) -> dict:
        photo = self.by_id.get(p.get("photo_id", ""))
        if photo is None:
            return {"stat": "fail", "code": 1, "message": f"Photo \"{p.get('photo_id')}\" not found (invalid ID)"}
        page = f"https://www.flickr.com/photos/{photo.path_alias or photo.owner}/{photo.id}/"
        return {"photo": {
            "id": photo.id, "secret": "abc", "server": "65535", "farm": 66, "dateuploaded": str(photo.upload),
            "license": str(photo.license), "media": photo.media,
            **({"originalsecret": "def", "originalformat": "jpg"} if "o" in photo.sizes else {}),
            "owner": {"nsid": photo.owner, "username": photo.ownername, "realname": "", "path_alias": photo.path_alias},
            "title": {"_content": photo.title}, "description": {"_content": ""},
            "dates": {"posted": str(photo.upload), "taken": photo.taken, "takengranularity": 0, "takenunknown": "0"},
            "urls": {"url": [{"type": "photopage", "_content": page}]}}, "stat": "ok"}

    def get_sizes(self, p: dict) -> dict:
        photo = self.by_id.get(p.get("photo_id", ""))
        if photo is None:
            return {"stat": "fail", "code": 1, "message": "Photo not found"}
        sizes = [{"label": LABELS[code], "width": w, "height": h, "source": self.image_url(photo, code),
                  "url": f"https://www.flickr.com/photos/x/{photo.id}/sizes/{code}/", "media": "photo"}
                 for code, (w, h) in sorted(photo.sizes.items(), key=lambda kv: kv[1][0] * kv[1][1])]
        if photo.media == "video":
            sizes.append({"label": "Site MP4", "width": 640, "height": 360, "media": "video",
                          "source": f"{self.base}/video/{photo.id}.mp4", "url": ""})
        return {"sizes": {"canblog": 0, "canprint": 0, "candownload": int("o" in photo.sizes), "size": sizes},
                "stat": "ok"}

    # -- the photo host ------------------------------------------------------------------------

    def image(self, h) -> None:
        name = h.path.rsplit("/", 1)[-1]
        with self.lock:
            self.image_hits[name] += 1
        stem = name.removesuffix(".jpg")
        photo_id, _, code = stem.partition("_")
        photo = self.by_id.get(photo_id)
        if photo is None or code not in photo.sizes:
            return self.send(h, 404, b"not found", "text/html")
        w, hgt = photo.sizes[code]
        return self.send(h, 200, image_bytes(photo.seed, w, hgt), "image/jpeg")

    def reply(self, h, answer: dict) -> None:
        self.send(h, 200, json.dumps(answer).encode(), "application/json")

    @staticmethod
    def send(h, status: int, body: bytes, ctype: str) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
