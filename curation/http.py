"""Downloading one URL politely and within bounds, from worker threads.

`http.client` directly, rather than a higher-level client, because the bounds need control of
the socket: each read is a single `read1` with the socket timeout set to what is left of the
total deadline, so a server that trickles its body cannot stretch a download past `timeout`.
While the status line and headers are read (a readline at a time, which a timeout per read
cannot bound), a timer shuts the socket down at the deadline.
Connections are kept alive per host and reused; a per-host semaphore caps concurrency.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import random
import socket
import ssl
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from .items import FetchError

USER_AGENT = "anyres-curate/0.1 (image dataset curation; +https://pypi.org/project/anyres)"
RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_REDIRECTS = 5
CHUNK = 1 << 18


@dataclass(frozen=True)
class FetchConfig:
    timeout: float = 30.0  # total seconds for one attempt: connect, headers and body
    connect_timeout: float = 10.0
    retries: int = 2  # further attempts after a timeout, a dropped connection, 429 or 5xx
    backoff: float = 1.0  # first retry waits about this long, then doubling (with jitter)
    max_retry_after: float = 60.0  # a longer Retry-After gives up instead of stalling a worker
    max_bytes: int = 64 * 2**20
    per_host: int = 4  # concurrent connections to one host, in one worker
    user_agent: str = USER_AGENT


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpClient:
    def __init__(self, config: FetchConfig):
        self.config = config
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = defaultdict(list)
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._ssl = ssl.create_default_context()

    def get(self, url: str) -> bytes:
        attempt = 0
        while True:
            try:
                return self._attempt(url)
            except FetchError as exc:
                if not exc.retryable or attempt >= self.config.retries:
                    raise
                delay = exc.retry_after
                if delay is None:
                    delay = self.config.backoff * 2**attempt * random.uniform(0.5, 1.5)
                elif delay > self.config.max_retry_after:
                    raise FetchError(exc.reason, f"{exc.detail}; Retry-After {delay:.0f}s is longer than "
                                     f"{self.config.max_retry_after:.0f}s") from None
                time.sleep(delay)
                attempt += 1

    def _attempt(self, url: str) -> bytes:
        deadline = time.monotonic() + self.config.timeout
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https"):
                raise FetchError("unsupported-scheme", f"{parts.scheme or 'no'} scheme; only http and https are fetched")
            if not parts.hostname:
                raise FetchError("bad-url", "no host name")
            with self._slot(parts.hostname):
                location = self._request(parts, deadline)
            if isinstance(location, bytes):
                return location
            url = urljoin(url, location)
        raise FetchError("too-many-redirects", f"more than {MAX_REDIRECTS} redirects")

    def _slot(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            slot = self._slots.get(host)
            if slot is None:
                slot = self._slots[host] = threading.BoundedSemaphore(self.config.per_host)
            return slot

    def _request(self, parts, deadline: float) -> bytes | str:
        """The body, or the Location of a redirect."""
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"User-Agent": self.config.user_agent, "Accept": "image/*,*/*;q=0.8",
                   "Accept-Encoding": "identity"}
        for reused in (True, False):
            conn, was_idle = self._connection(parts, deadline, reuse=reused)
            try:
                if conn.sock is None:
                    conn.connect()  # under the connect timeout; then the rest of the deadline
                # The response keeps reading from this socket even after http.client lets
                # go of it (a `Connection: close` reply sets conn.sock to None).
                sock = conn.sock
                _set_timeout(sock, deadline)
                conn.request("GET", target, headers=headers)
                watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _shut, (sock,))
                watchdog.daemon = True
                watchdog.start()
                try:
                    response = conn.getresponse()
                finally:
                    watchdog.cancel()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                if not was_idle:  # a fresh connection that fails is the server's failure
                    raise _network_error(exc, deadline) from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise _network_error(exc, deadline) from None
        try:
            body_or_location = self._response(response, sock, deadline)
        except BaseException:
            conn.close()
            raise
        if response.will_close or not response.isclosed():
            conn.close()
        else:
            with self._lock:
                self._idle[_pool_key(parts)].append(conn)
        return body_or_location

    def _response(self, response: http.client.HTTPResponse, sock, deadline: float) -> bytes | str:
        status = response.status
        if 300 <= status < 400 and response.getheader("Location"):
            _drain(response, sock, deadline, cap=1 << 16)
            return response.getheader("Location")
        if status != 200:
            retryable = status in RETRY_STATUSES
            retry_after = retry_after_seconds(response.getheader("Retry-After")) if retryable else None
            if retryable:
                _drain(response, sock, deadline, cap=1 << 16)
            else:
                response.will_close = True
            raise FetchError(f"http-{status}", response.reason or "", retryable, retry_after)
        cap = self.config.max_bytes
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            response.will_close = True
            raise FetchError("too-large", f"Content-Length {declared} is more than the cap of {cap} bytes")
        body = _drain(response, sock, deadline, cap=cap)
        if body is None:
            response.will_close = True
            raise FetchError("too-large", f"body is more than the cap of {cap} bytes")
        return body

    def _connection(self, parts, deadline: float, reuse: bool):
        key = _pool_key(parts)
        if reuse:
            with self._lock:
                if self._idle[key]:
                    return self._idle[key].pop(), True
        timeout = max(0.001, min(self.config.connect_timeout, deadline - time.monotonic()))
        if key[0] == "https":
            conn = http.client.HTTPSConnection(key[1], key[2], timeout=timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(key[1], key[2], timeout=timeout)
        return conn, False

    def close(self) -> None:
        with self._lock:
            for conns in self._idle.values():
                for conn in conns:
                    conn.close()
            self._idle.clear()


def _pool_key(parts) -> tuple[str, str, int]:
    return parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _shut(sock) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def _set_timeout(sock, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    sock.settimeout(left)


def _drain(response, sock, deadline: float, cap: int) -> bytes | None:
    """The body, read one socket read at a time against the deadline; None past `cap`."""
    chunks, total = [], 0
    try:
        while True:
            _set_timeout(sock, deadline)
            chunk = response.read1(CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                return None
            chunks.append(chunk)
        chunks.append(response.read())  # b"", and it marks the response done for reuse
    except (OSError, http.client.HTTPException) as exc:
        raise _network_error(exc, deadline) from None
    if response.length not in (None, 0):
        raise FetchError("truncated-body", f"connection closed {response.length} bytes early", retryable=True)
    return b"".join(chunks)


def _network_error(exc: Exception, deadline: float) -> FetchError:
    if isinstance(exc, (socket.timeout, TimeoutError)) or time.monotonic() >= deadline:
        return FetchError("timeout", "deadline passed before the download finished", retryable=True)
    if isinstance(exc, ConnectionRefusedError):
        return FetchError("connection-refused", "the server refused the connection", retryable=True)
    if isinstance(exc, socket.gaierror):
        return FetchError("dns", f"cannot resolve the host: {exc.strerror or exc}")
    if isinstance(exc, ssl.SSLError):
        return FetchError("tls", f"{exc.reason or exc}")
    if isinstance(exc, http.client.IncompleteRead):
        return FetchError("truncated-body", f"connection closed after {len(exc.partial)} bytes", retryable=True)
    return FetchError("connection-error", f"{type(exc).__name__}: {exc}", retryable=True)
