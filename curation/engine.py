"""Where slices run: on Ray (an embedded local cluster by default, or an existing one), or
inline in this process (small inputs, debugging, most tests).

Both take the same slice function and report per-item progress back to the driver: inline by
a plain call, on Ray through a tiny actor that tasks post counts to and the driver drains.
At most two slices per worker are in flight, so the driver never materialises a huge input.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from shards import DatasetError

from .fetch import Slice, WorkerConfig, run_slice
from .sources import Source
from .workdir import WorkDir

Progress = Callable[[dict[str, int]], None]
Done = Callable[[dict[str, Any]], None]
OBJECT_STORE_BYTES = 200 * 2**20  # slices carry item lists only; image bytes never travel


class Engine(Protocol):
    workers: int

    def run(self, slices: Iterable[Slice], work: WorkDir, source: Source, config: WorkerConfig,
            progress: Progress, done: Done) -> None: ...

    def close(self) -> None: ...


@dataclass
class InlineEngine:
    workers: int = 1

    def run(self, slices, work, source, config, progress, done) -> None:
        for task in slices:
            done(run_slice(work, task, source, config, report=progress))

    def close(self) -> None:
        pass


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes: Ray itself retries an unreachable GCS for a long time."""
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise DatasetError(f"--ray-address {address!r} is not HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise DatasetError(f"cannot reach Ray at {address}: {exc.strerror or exc}") from None


class RayEngine:
    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        import ray

        self._ray = ray
        self._owned = False
        if not ray.is_initialized():
            if address:
                check_reachable(address)
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "logging_level": logging.ERROR}
            if not address or address == "local":
                options.update(num_cpus=num_cpus or os.cpu_count(), object_store_memory=OBJECT_STORE_BYTES)
            try:
                ray.init(address=None if address == "local" else address, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise DatasetError(f"cannot start or join Ray ({address or 'local'}): {exc}") from None
            self._owned = True
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def run(self, slices, work, source, config, progress, done) -> None:
        ray = self._ray
        sink = _sink_actor(ray).remote()
        remote = ray.remote(_run_remote).options(num_cpus=1, max_retries=3)
        pending: list = []
        try:
            for task in slices:
                pending.append(remote.remote(work, task, source, config, sink))
                while len(pending) >= 2 * self.workers:
                    pending = self._wait(pending, sink, progress, done)
            while pending:
                pending = self._wait(pending, sink, progress, done)
            _drain(ray, sink, progress)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            ray.kill(sink)

    def _wait(self, pending, sink, progress, done):
        ready, pending = self._ray.wait(pending, num_returns=1, timeout=0.25)
        _drain(self._ray, sink, progress)
        for ref in ready:
            done(self._ray.get(ref))
        return pending

    def close(self) -> None:
        if self._owned:
            self._ray.shutdown()


def _run_remote(work, task, source, config, sink):
    return run_slice(work, task, source, config, report=lambda delta: sink.add.remote(delta))


def _drain(ray, sink, progress: Progress) -> None:
    delta = ray.get(sink.take.remote())
    if delta:
        progress(delta)


_SINK = None


def _sink_actor(ray):
    global _SINK
    if _SINK is None:
        @ray.remote(num_cpus=0)
        class ProgressSink:
            def __init__(self):
                self.pending: Counter = Counter()

            def add(self, delta: dict[str, int]) -> None:
                self.pending.update(delta)

            def take(self) -> dict[str, int]:
                taken, self.pending = dict(self.pending), Counter()
                return taken

        _SINK = ProgressSink
    return _SINK
