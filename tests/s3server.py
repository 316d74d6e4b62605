"""A real S3 API on 127.0.0.1 for the tests: moto's server, in this process, behind a switch
that can slow down uploads whose key matches a pattern (so a test can kill a client mid-way).

Credentials are made up and distinctive, so a test can search every output for them.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time

ACCESS_KEY = "AKIAANYRESTESTKEY000"
SECRET_KEY = "anyres-test-secret-KJH93lkd0Qa"


class S3Server:
    def __init__(self):
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        backend = DomainDispatcherApplication(create_backend_app)
        self.slow_puts: tuple[str, float] | None = None  # (key pattern, seconds before the body is read)

        def app(environ, start_response):
            slow = self.slow_puts
            if slow and environ["REQUEST_METHOD"] == "PUT" and re.search(slow[0], environ.get("PATH_INFO", "")):
                time.sleep(slow[1])
            return backend(environ, start_response)

        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self) -> dict[str, str]:
        """What a process needs to reach this server as S3: the usual AWS variables."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"}

    def make_bucket(self, name: str) -> None:
        import s3fs

        s3fs.S3FileSystem(endpoint_url=self.endpoint, key=ACCESS_KEY, secret=SECRET_KEY,
                          skip_instance_cache=True).mkdir(name)

    def stop(self) -> None:
        self.server.shutdown()


def use(server: S3Server, monkeypatch) -> None:
    """Point this process's S3 clients at `server`."""
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    # s3fs keeps one client per set of arguments: a fresh one reads the environment again
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


def subprocess_env(server: S3Server, **extra: str) -> dict[str, str]:
    return {**os.environ, **server.env(), **extra}
