"""Reading a dataset over http(s): bounded in bytes and time, and never leaving its origin.

The server is untrusted (SECURITY.md). Every response body is read up to a stated number of
bytes and no further, whatever Content-Length says or does not say; every request has a time
limit; a redirect is followed only to the same scheme, host and port, so a dataset cannot make
the reader contact a second host. Proxies from the environment are not used, for the same
reason. Only the standard library is used: each read is one plain synchronous request.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.parse
import urllib.request

from plumbing.errors import DatasetError
from shards.format.limits import Limits

CHUNK = 8 * 2**20  # bytes per ranged request when streaming a shard


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if origin(newurl) != origin(req.full_url):
            raise DatasetError(f"refusing a redirect from {req.full_url} to another host: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    # Built by hand: build_opener would add file://, ftp:// and environment proxies.
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(), _SameOriginRedirects(),
                    urllib.request.HTTPErrorProcessor(), urllib.request.HTTPDefaultErrorHandler()):
        opener.add_handler(handler)
    return opener


class HttpClient:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.opener = _opener()

    def _open(self, url: str, start: int | None = None, end: int | None = None, method: str = "GET"):
        headers = {"Accept-Encoding": "identity"}
        if start is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        request = urllib.request.Request(url, headers=headers, method=method)
        try:
            return self.opener.open(request, timeout=self.limits.stall_seconds)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                raise FileNotFoundError(url) from None
            if exc.code == 416:
                return None  # a range past the end: no bytes there
            raise DatasetError(f"cannot read {url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            raise DatasetError(f"cannot read {url}: {getattr(exc, 'reason', exc)}") from None

    def _body(self, response, url: str, limit: int) -> bytes:
        """At most `limit` bytes of a body; more than that is an error, not a truncation."""
        deadline = time.monotonic() + self.limits.request_seconds
        chunks, got = [], 0
        with response:
            while True:
                try:
                    # read1: what has arrived, so a server dripping bytes meets the deadline.
                    chunk = response.read1(min(1 << 20, limit + 1 - got))
                except (TimeoutError, http.client.HTTPException, OSError) as exc:
                    raise DatasetError(f"cannot read {url}: {exc}") from None
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                got += len(chunk)
                if got > limit:
                    raise DatasetError(f"{url} sends more than {limit} bytes, its bound (SECURITY.md: limits)")
                if time.monotonic() > deadline:
                    raise DatasetError(f"{url}: request took over {self.limits.request_seconds:g} s")

    def exists(self, url: str) -> bool:
        try:
            response = self._open(url, 0, 1)
        except FileNotFoundError:
            return False
        if response is not None:
            response.close()
        return True

    def read(self, url: str, limit: int) -> bytes:
        response = self._open(url)
        return b"" if response is None else self._body(response, url, limit)

    def read_range(self, url: str, start: int, end: int) -> bytes:
        """Bytes [start, end), or fewer at the end of the file; never more."""
        if end <= start:
            return b""
        response = self._open(url, start, end)
        if response is None:
            return b""
        if response.status != 206 and start > 0:
            response.close()
            raise DatasetError(f"{url}: the server ignores Range requests; random access needs them")
        return self._body(response, url, end - start)

    def size(self, url: str) -> int | None:
        try:
            response = self._open(url, 0, 1)
        except (FileNotFoundError, DatasetError):
            return None
        if response is None:
            return 0
        with response:
            total = (response.headers.get("Content-Range") or "").rpartition("/")[2]
            return int(total) if total.isdigit() else None


class HttpStream:
    """A file object that reads a URL front to back in ranged requests of CHUNK bytes each, so
    that no single response can run longer or larger than one request's bounds."""

    def __init__(self, client: HttpClient, url: str):
        self.client = client
        self.url = url
        self.position = 0  # of the next request
        self.buffer = b""
        self.used = 0  # bytes of `buffer` already returned; slicing it each time would be quadratic
        self.done = False

    def read(self, n: int) -> bytes:
        while not self.done and len(self.buffer) - self.used < n:
            chunk = self.client.read_range(self.url, self.position, self.position + CHUNK)
            self.position += len(chunk)
            self.buffer = self.buffer[self.used:] + chunk
            self.used = 0
            self.done = len(chunk) < CHUNK
        out = self.buffer[self.used : self.used + n]
        self.used += len(out)
        return out

    def close(self) -> None:
        self.buffer = b""

    def __enter__(self) -> HttpStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
