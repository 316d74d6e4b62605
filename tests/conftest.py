"""Shared fixtures: a static HTTP server on 127.0.0.1 with Range support, like the object
stores and web servers datasets are read from."""

from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path

import pytest


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with single `Range: bytes=a-b` support (the standard handler has none)."""

    def log_message(self, *args):  # keep test output clean
        pass

    def send_head(self):
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not match or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start = int(match.group(1)) if match.group(1) else max(0, size - int(match.group(2)))
        end = min(int(match.group(2)), size - 1) if match.group(1) and match.group(2) else size - 1
        if start >= size or start > end:
            self.send_error(416)
            return None
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.range_requests.append((self.path, start, end))
        return _Limited(f, end - start + 1)


class _Limited:
    def __init__(self, f, remaining):
        self.f, self.remaining = f, remaining

    def read(self, n=-1):
        n = self.remaining if n < 0 else min(n, self.remaining)
        data = self.f.read(n)
        self.remaining -= len(data)
        return data

    def close(self):
        self.f.close()


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
