"""A local web server that serves the test corpus with the failures real servers show: slow
responses, resets, redirects, wrong types, and a count of every request."""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections import Counter


class ImageServer:
    """Serves `files` under /img/NAME, plus routes that fail in every way the web does.
    Records each request's path and User-Agent, and the most concurrent requests seen."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.requests: list[tuple[str, str]] = []
        self.hits: Counter = Counter()
        self.active = 0
        self.max_active = 0
        self.delay = 0.0  # seconds before answering /img/ requests
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall

            def log_message(self, *args):
                pass

            def do_GET(self):
                with server.lock:
                    server.requests.append((self.path, self.headers.get("User-Agent", "")))
                    server.hits[self.path] += 1
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                    hit = server.hits[self.path]
                try:
                    server.route(self, hit)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server.lock:
                        server.active -= 1

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # clients hang up on purpose here
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def route(self, h: http.server.BaseHTTPRequestHandler, hit: int) -> None:
        path = h.path
        if m := re.fullmatch(r"/img/(.+)", path):
            if self.delay:
                time.sleep(self.delay)
            return self.send(h, 200, self.files.get(m.group(1)), "image/jpeg") if m.group(1) in self.files \
                else self.send(h, 404, b"not found")
        if m := re.fullmatch(r"/status/(\d+)", path):
            return self.send(h, int(m.group(1)), b"error page")
        if m := re.fullmatch(r"/flaky/(\d+)/(.+)", path):  # 503 for the first N hits
            if hit <= int(m.group(1)):
                return self.send(h, 503, b"busy")
            return self.send(h, 200, self.files[m.group(2)])
        if m := re.fullmatch(r"/ratelimit/(\d+)/(.+)", path):  # one 429 asking to wait N seconds
            if hit == 1:
                return self.send(h, 429, b"slow down", headers={"Retry-After": m.group(1)})
            return self.send(h, 200, self.files[m.group(2)])
        if m := re.fullmatch(r"/redirect/(.+)", path):
            return self.send(h, 302, b"", headers={"Location": f"/img/{m.group(1)}"})
        if m := re.fullmatch(r"/html/(.+)", path):  # an error page served as an image
            return self.send(h, 200, b"<html><body>please log in</body></html>", "image/jpeg")
        if path == "/hang":
            time.sleep(4)
            return self.send(h, 200, b"late")
        if path == "/trickle":  # a valid length, one byte every 50 ms: never done in time
            h.send_response(200)
            h.send_header("Content-Length", "100000")
            h.end_headers()
            for _ in range(80):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.05)
            h.close_connection = True
            return None
        if path == "/trickle-headers":  # the status line, then a header a byte at a time
            h.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for byte in b"X-Slow: " + b"y" * 80 + b"\r\n":
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
                time.sleep(0.05)
            h.close_connection = True
            return None
        if path == "/huge-declared":
            h.send_response(200)
            h.send_header("Content-Length", str(10**10))
            h.end_headers()
            h.close_connection = True
            return None
        if path == "/huge-chunked":  # no length up front: the cap must hold while reading
            h.send_response(200)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            block = b"\xff" * 65536
            for _ in range(40):
                h.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            h.wfile.write(b"0\r\n\r\n")
            return None
        return self.send(h, 404, b"no route")

    @staticmethod
    def send(h, status: int, body: bytes, ctype: str = "text/html", headers: dict | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
