"""Talking to the Flickr REST API through `flickrapi`: credentials that never leak, one rate
limiter per endpoint for the whole process, and retries that tell a transient failure (HTTP 5xx
or 429, "service unavailable") from a permanent one (an invalid key, bad parameters).

Every API call of a run is made on the driver (search pages, per-id lookups); workers only
download image bytes from the photo hosts, which the API's limit does not cover. A limiter
shared within this process is therefore the run's one global limiter.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flickrapi
import requests

from shards import DatasetError

REST_URL = "https://api.flickr.com/services/rest/"
# 95 SSL required, 96 invalid signature, 97 missing signature, 98 invalid auth token,
# 99 insufficient permissions, 100 invalid API key: nothing a retry can mend.
AUTH_CODES = frozenset({95, 96, 97, 98, 99, 100})
# 10 search API unavailable, 105 service unavailable, 106 write failed: Flickr says try later.
TRANSIENT_CODES = frozenset({10, 105, 106})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# flickrapi logs every non-200 answer at ERROR; with no logging configured, Python's last-resort
# handler would print those lines around our one-line errors. Callers that configure logging
# still see them.
logging.getLogger("flickrapi").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class Credentials:
    key: str = field(repr=False)
    secret: str = field(repr=False)

    def __reduce__(self):
        # Sources travel to Ray workers, which only download image bytes: the key stays here.
        return (Credentials, ("", ""))

    def redact(self, text: str) -> str:
        for value in (self.key, self.secret):
            if value:
                text = text.replace(value, "[redacted]")
        return text


KEY_NAMES = ("flickr_api_key", "api_key", "key")
SECRET_NAMES = ("flickr_api_secret", "api_secret", "secret")


def load_credentials(path: str | None = None, environ: Mapping[str, str] | None = None) -> Credentials:
    """From a file (`NAME=VALUE` lines, or the key and the secret on two lines), else from
    FLICKR_API_KEY and FLICKR_API_SECRET. Errors never quote the file's content."""
    environ = os.environ if environ is None else environ
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read the credentials file {path}: "
                               f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None
        key, secret = _parse_credentials(text)
        where = f"the credentials file {path}"
    else:
        key, secret = environ.get("FLICKR_API_KEY", "").strip(), environ.get("FLICKR_API_SECRET", "").strip()
        where = "FLICKR_API_KEY and FLICKR_API_SECRET"
    if not key or not secret:
        raise DatasetError(f"no Flickr API key and secret in {where}; set both, or pass --credentials FILE "
                           "(keys: https://www.flickr.com/services/apps/create/)")
    return Credentials(key, secret)


def _parse_credentials(text: str) -> tuple[str, str]:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    pairs = dict(line.split("=", 1) for line in lines if "=" in line)
    if pairs:
        named = {k.strip().lower().removeprefix("export "): v.strip().strip("'\"") for k, v in pairs.items()}
        key = next((named[n] for n in KEY_NAMES if named.get(n)), "")
        secret = next((named[n] for n in SECRET_NAMES if named.get(n)), "")
        return key, secret
    return (lines[0], lines[1]) if len(lines) == 2 else ("", "")


@dataclass(frozen=True)
class ApiConfig:
    endpoint: str = REST_URL
    calls_per_hour: float = 3600.0  # Flickr's limit per key
    burst: int = 1  # calls allowed back to back before the spacing applies
    retries: int = 5  # further attempts after a transient failure
    backoff: float = 2.0  # first wait, doubling, with jitter
    max_backoff: float = 120.0
    timeout: float = 30.0  # seconds per HTTP request

    def __post_init__(self) -> None:
        if not self.calls_per_hour > 0 or self.burst < 1 or self.retries < 0:
            raise DatasetError("calls per hour must be positive, burst at least 1 and retries at least 0")
        if not re.match(r"https?://[^/\s]+", self.endpoint):
            raise DatasetError(f"--endpoint {self.endpoint!r} is not an http(s) URL")


class RateLimiter:
    """At most `burst` calls at once and one every 3600 / calls_per_hour seconds after that:
    in any stretch of T seconds, at most burst + T * calls_per_hour / 3600 calls start. A
    generic cell-rate algorithm: `ready` is when the next call may start on the steady pace."""

    def __init__(self, calls_per_hour: float, burst: int = 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 3600.0 / calls_per_hour
        self.slack = (burst - 1) * self.interval
        self.clock, self.sleep = clock, sleep
        self.ready = float("-inf")
        self.lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a slot; returns how long it waited."""
        with self.lock:
            now = self.clock()
            start = max(now, self.ready - self.slack)
            if start > now:
                self.sleep(start - now)
            self.ready = max(self.ready, start) + self.interval
            return start - now


_LIMITERS: dict[tuple[str, float, int], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(config: ApiConfig) -> RateLimiter:
    with _LIMITERS_LOCK:
        key = (config.endpoint, config.calls_per_hour, config.burst)
        if key not in _LIMITERS:
            _LIMITERS[key] = RateLimiter(config.calls_per_hour, config.burst)
        return _LIMITERS[key]


class FlickrApiError(Exception):
    """Flickr refused one call for good (a photo not found, bad parameters)."""

    def __init__(self, method: str, code: int | None, message: str):
        super().__init__(f"{method}: {message}" + (f" (error {code})" if code is not None else ""))
        self.method, self.code, self.message = method, code, message


class FlickrAuthError(DatasetError):
    pass


class FlickrUnavailable(DatasetError):
    pass


@dataclass
class _Failure:
    retryable: bool
    code: int | None
    message: str


class FlickrClient:
    """`call(method, **params)` -> the parsed JSON answer, or FlickrApiError (permanent),
    FlickrAuthError (credentials refused) or FlickrUnavailable (transient failures outlasted
    the retries). All messages are scrubbed of the key and the secret."""

    def __init__(self, credentials: Credentials, config: ApiConfig, limiter: RateLimiter | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.credentials, self.config = credentials, config
        self.limiter = limiter or shared_limiter(config)
        self.sleep = sleep
        # parsed-json: dicts, no XML; store_token=False: no token cache written under ~/.flickr.
        self._api = flickrapi.FlickrAPI(credentials.key, credentials.secret, format="parsed-json",
                                        store_token=False, timeout=config.timeout)
        self._api.REST_URL = config.endpoint

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        params = {k: str(v) for k, v in params.items() if v is not None}
        attempt = 0
        while True:
            self.limiter.acquire()
            try:
                return self._api.do_flickr_call(method, **params)
            except flickrapi.FlickrError as exc:
                failure = self._classify(exc)
            except requests.RequestException as exc:
                failure = _Failure(True, None, f"{type(exc).__name__} talking to {self.config.endpoint}")
            except ValueError:  # not JSON: a web page, a proxy's error
                failure = _Failure(False, None, f"the answer from {self.config.endpoint} is not Flickr API JSON")
            message = self.credentials.redact(failure.message)
            if failure.code in AUTH_CODES:
                raise FlickrAuthError(f"Flickr refused the API key and secret: {message} (error {failure.code}); "
                                      "check FLICKR_API_KEY and FLICKR_API_SECRET or --credentials")
            if not failure.retryable:
                raise FlickrApiError(method, failure.code, message)
            if attempt >= self.config.retries:
                raise FlickrUnavailable(f"Flickr API unavailable: {message}, {attempt + 1} attempts at {method}; "
                                        "rerun the same command to resume")
            self.sleep(min(self.config.max_backoff, self.config.backoff * 2**attempt) * random.uniform(0.5, 1.5))
            attempt += 1

    @staticmethod
    def _classify(exc: flickrapi.FlickrError) -> _Failure:
        if exc.code is not None:
            message = re.sub(r"^Error: \d+: ", "", str(exc))
            return _Failure(exc.code in TRANSIENT_CODES, exc.code, message)
        status = re.search(r"Status code (\d+)", str(exc))  # flickrapi's words for a non-200 answer
        if status:
            code = int(status.group(1))
            return _Failure(code in RETRY_STATUSES, None, f"HTTP {code}")
        return _Failure(False, None, str(exc))
