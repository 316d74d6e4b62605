"""Hostile http(s) servers: requests stay on the dataset's origin, every response is bounded in
bytes and time, and byte counts are checked whatever the server says about lengths.

Two servers on 127.0.0.1 stand for two hosts: the dataset's, and one it must never reach.
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
from pathlib import Path

import pytest

from shards import Dataset
from tests.factories import make_dataset
from tests.servers import RangeRequestHandler

from .hostile import SHARD0, index_rows, read_manifest, write_manifest
from .test_hostile import one_line_error, run_cli
from .test_hostile_deep import MEMORY_BOUND_MB, measured


class Recording(RangeRequestHandler):
    """The Range-capable test server, recording every request it gets."""

    def send_head(self):
        self.seen.append(self.path)
        return super().send_head()


class Redirecting(Recording):
    """Sends every shard request to the other host."""

    def send_head(self):
        if "/shards/" in self.path:
            self.seen.append(self.path)
            self.send_response(302)
            self.send_header("Location", f"{self.elsewhere}{self.path}")
            self.end_headers()
            return None
        return super().send_head()


class Endless(http.server.BaseHTTPRequestHandler):
    """dataset.json that never ends; or, with `drip`, a body sent one byte at a time."""

    drip = False
    stall = False

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.stall:
            time.sleep(5)
            return
        self.send_response(200)
        self.end_headers()
        try:
            self.wfile.write(b'{"format": "anyres-shards", "x": "')
            while True:
                self.wfile.write(b"x" if self.drip else b"x" * 65536)
                if self.drip:
                    self.wfile.flush()
                    time.sleep(0.05)
        except OSError:
            pass


class NoLengths(http.server.BaseHTTPRequestHandler):
    """A plain server that ignores Range and sends no Content-Length: it closes to end a body."""

    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.folder) / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(path.read_bytes())


@pytest.fixture
def serve():
    servers = []

    def start(handler, **attributes):
        handler = type("Handler", (handler,), {"seen": [], "range_requests": [], **attributes})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", handler.seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def folder_handler(base, folder: Path):
    return functools.partialmethod(base.__init__, directory=str(folder))


@pytest.fixture
def world(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root, n=4)
    return root, tmp_path / "out"


def test_redirects_to_another_host_are_refused(world, serve, capsys):
    root, out = world
    other, other_seen = serve(Recording, __init__=folder_handler(Recording, root.parent))
    url, seen = serve(Redirecting, __init__=folder_handler(Redirecting, root.parent), elsewhere=other)
    key = index_rows(root)[0]["key"]
    code, printed, _ = run_cli(capsys, "verify", f"{url}/ds")
    assert code == 1 and "refusing a redirect" in printed
    for args in (("show", f"{url}/ds", key), ("subset", f"{url}/ds", out), ("grid", f"{url}/ds", "-o", out / "g.png")):
        code, _, err = run_cli(capsys, *args)
        assert one_line_error(code, err) and "another host" in err, (args[0], err)
    errors = []
    assert list(Dataset(f"{url}/ds").iter_samples(on_error=errors.append)) == [] and len(errors) == 1
    assert seen and other_seen == []  # the second host was never contacted


def test_protocol_relative_shard_names_are_refused(world, serve, capsys):
    root, _ = world
    other, other_seen = serve(Recording, __init__=folder_handler(Recording, root.parent))
    doc = read_manifest(root)
    doc["shards"][0]["name"] = f"//{other.split('//')[1]}/ds/{SHARD0}"
    write_manifest(root, doc)
    url, _ = serve(Recording, __init__=folder_handler(Recording, root.parent))
    for args in (("info", f"{url}/ds"), ("verify", f"{url}/ds"), ("ls", f"{url}/ds")):
        code, _, err = run_cli(capsys, *args)
        assert one_line_error(code, err) and "refusing" in err
    assert other_seen == []


def test_an_endless_manifest_stops_at_its_bound(serve, capsys):
    url, _ = serve(Endless)
    start = time.perf_counter()
    code, _, err = run_cli(capsys, "info", f"{url}/ds")
    assert one_line_error(code, err) and "sends more than" in err
    assert time.perf_counter() - start < 10
    code, mb, seconds = measured("info", f"{url}/ds")
    assert code == 2 and mb < MEMORY_BOUND_MB and seconds < 10


@pytest.mark.parametrize("kind", ["drip", "stall"])
def test_slow_servers_meet_the_time_bounds(serve, capsys, monkeypatch, kind):
    url, _ = serve(Endless, **{kind: True})
    monkeypatch.setenv("ANYRES_REQUEST_SECONDS", "1")
    monkeypatch.setenv("ANYRES_STALL_SECONDS", "1")
    start = time.perf_counter()
    code, _, err = run_cli(capsys, "info", f"{url}/ds")
    assert one_line_error(code, err)
    assert time.perf_counter() - start < 5


def test_byte_counts_are_checked_without_content_length(world, serve, capsys):
    root, _ = world
    url, _ = serve(NoLengths, folder=str(root.parent))
    assert run_cli(capsys, "verify", f"{url}/ds")[0] == 0
    path = root / SHARD0
    honest = path.read_bytes()
    path.write_bytes(honest + b"\0" * 4096)  # longer than the manifest says: zeros no reader sees
    code, printed, _ = run_cli(capsys, "verify", f"{url}/ds")
    assert code == 1 and f"manifest says {len(honest)} bytes, the file has more than {len(honest)}" in printed
    path.write_bytes(honest[:-1024])  # shorter
    code, printed, _ = run_cli(capsys, "verify", f"{url}/ds")
    assert code == 1 and f"the file has {len(honest) - 1024}" in printed
    # A server without Range support cannot serve random access: one clear line.
    code, _, err = run_cli(capsys, "show", f"{url}/ds", index_rows(root)[1]["key"])
    assert one_line_error(code, err) and "Range" in err
