"""The downloader against a server on 127.0.0.1 that fails in every way the web does."""

import threading
import time

import pytest

from curation.http import USER_AGENT, FetchConfig, HttpClient, retry_after_seconds
from curation.items import FetchError

FAST = FetchConfig(timeout=1.0, connect_timeout=0.5, retries=2, backoff=0.02, max_bytes=2 * 2**20)


def reason_of(client: HttpClient, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        client.get(url)
    return caught.value


def test_good_image_bytes_are_exact_and_the_user_agent_names_the_tool(image_server, corpus):
    client = HttpClient(FAST)
    data = client.get(image_server.url("img/photo-0.jpg"))
    assert data == corpus[0]["photo-0.jpg"][0]
    assert image_server.requests[-1][1] == USER_AGENT and "anyres-curate" in USER_AGENT
    # Keep-alive: the next request reuses the connection and still gets its own bytes.
    assert client.get(image_server.url("img/photo-1.jpg")) == corpus[0]["photo-1.jpg"][0]


def test_404_is_not_retried_and_500_is(image_server):
    client = HttpClient(FAST)
    assert reason_of(client, image_server.url("status/404")).reason == "http-404"
    assert image_server.hits["/status/404"] == 1
    error = reason_of(client, image_server.url("status/500"))
    assert (error.reason, error.retryable) == ("http-500", True)
    assert image_server.hits["/status/500"] == 1 + FAST.retries


def test_5xx_then_success_is_kept(image_server, corpus):
    data = HttpClient(FAST).get(image_server.url("flaky/2/photo-2.jpg"))
    assert data == corpus[0]["photo-2.jpg"][0] and image_server.hits["/flaky/2/photo-2.jpg"] == 3


def test_429_waits_for_retry_after(image_server, corpus):
    start = time.monotonic()
    data = HttpClient(FAST).get(image_server.url("ratelimit/1/photo-3.jpg"))
    assert data == corpus[0]["photo-3.jpg"][0]
    assert time.monotonic() - start >= 0.95  # Retry-After: 1, not the 0.02 s backoff


def test_retry_after_beyond_the_cap_gives_up_at_once(image_server):
    config = FetchConfig(timeout=1.0, retries=3, backoff=0.02, max_retry_after=5)
    start = time.monotonic()
    error = reason_of(HttpClient(config), image_server.url("ratelimit/3600/photo-0.jpg"))
    assert error.reason == "http-429" and "3600" in error.detail and time.monotonic() - start < 1


def test_retry_after_forms():
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_a_hung_server_times_out_within_the_deadline(image_server):
    config = FetchConfig(timeout=0.6, retries=0)
    start = time.monotonic()
    assert reason_of(HttpClient(config), image_server.url("hang")).reason == "timeout"
    assert time.monotonic() - start < 1.5


@pytest.mark.parametrize("path", ["trickle", "trickle-headers"])
def test_a_trickling_server_cannot_stretch_the_deadline(image_server, path):
    # Each byte comes well within any per-read timeout; only a total deadline stops it.
    config = FetchConfig(timeout=0.8, retries=1, backoff=0.02)
    start = time.monotonic()
    assert reason_of(HttpClient(config), image_server.url(path)).reason == "timeout"
    assert time.monotonic() - start < 2 * 0.8 + 1  # two attempts, each bounded
    assert image_server.hits[f"/{path}"] == 2


@pytest.mark.parametrize("path", ["huge-declared", "huge-chunked"])
def test_bodies_over_the_cap_are_refused(image_server, path):
    error = reason_of(HttpClient(FAST), image_server.url(path))
    assert error.reason == "too-large" and not error.retryable


def test_connection_refused(refused_url):
    error = reason_of(HttpClient(FAST), refused_url)
    assert error.reason == "connection-refused"


@pytest.mark.parametrize("url, reason", [("file:///etc/passwd", "unsupported-scheme"),
                                         ("ftp://127.0.0.1/x.jpg", "unsupported-scheme"),
                                         ("http:///nohost.jpg", "bad-url")])
def test_only_http_and_https_are_fetched(url, reason):
    assert reason_of(HttpClient(FAST), url).reason == reason


def test_redirects_are_followed(image_server, corpus):
    assert HttpClient(FAST).get(image_server.url("redirect/photo-1.jpg")) == corpus[0]["photo-1.jpg"][0]


def test_per_host_limit_caps_concurrent_requests(image_server):
    image_server.delay = 0.15
    client = HttpClient(FetchConfig(timeout=5, per_host=2))
    threads = [threading.Thread(target=client.get, args=(image_server.url(f"img/photo-{i % 4}.jpg"),))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert image_server.max_active == 2
