"""Shared fixtures: a static HTTP server on 127.0.0.1 with Range support, like the object
stores and web servers datasets are read from."""

from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path

import pytest

from tests.servers import RangeRequestHandler


@pytest.fixture
def http_server():
    """`serve(folder) -> (base_url, range_requests)`; servers stop at the end of the test."""
    servers = []

    def serve(folder: Path):
        requests: list[tuple[str, int, int]] = []
        handler = type("Handler", (RangeRequestHandler,), {"range_requests": requests})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", requests

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API (moto's server) on 127.0.0.1 for the whole session."""
    from tests.s3server import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch, request):
    """(server, bucket): a fresh bucket on the session's S3 server, this process pointed at it."""
    import fsspec

    from tests.s3server import use

    use(s3_server, monkeypatch)
    bucket = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-") or "bucket"
    fsspec.filesystem("s3").mkdir(bucket)
    yield s3_server, bucket
    s3_server.slow_puts = None
