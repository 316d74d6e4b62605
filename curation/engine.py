"""Where slices run: on Ray (a private local cluster by default, or an existing one), or
inline in this process (small inputs, debugging, most tests).

Both take the same slice function and report per-item progress back to the driver: inline by
a plain call, on Ray through a tiny actor that tasks post counts to and the driver drains.
At most two slices per worker are in flight, so the driver never materialises a huge input.

Joining a cluster (`--ray-address`): the driver takes the cluster's authentication mode,
sending this machine's Ray token where the cluster checks one (`ray start --head` does by
default); a missing or refused token is one line, before `ray.init` starts retrying; and
anyres's own packages travel with the job, so nodes need Ray and the dependencies, not anyres.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from shards import DatasetError

from .fetch import Slice, WorkerConfig, run_slice
from .sources import Source
from .workdir import WorkDir

Progress = Callable[[dict[str, int]], None]
Done = Callable[[dict[str, Any]], None]
OBJECT_STORE_BYTES = 200 * 2**20  # slices carry item lists only; image bytes never travel
SHIPPED = ("plumbing", "shards", "curation")  # all that slice tasks import; training (torch) stays home
MAX_SHIPPED_FILE = 2**20  # the packages are sources of a few kB; anything bigger is not code
TOKEN_HELP = ("copy the head node's ~/.ray/auth_token to ~/.ray/auth_token here, or set RAY_AUTH_TOKEN_PATH "
              "to a copy of it")


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


def host_port(address: str) -> tuple[str, int] | None:
    """HOST and PORT of a --ray-address; None for `auto` and `local`."""
    if address in ("auto", "local"):
        return None
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise DatasetError(f"--ray-address {address!r} is not HOST:PORT, ray://HOST:PORT or auto")
    return host, port


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes: Ray itself retries an unreachable GCS for a long time."""
    if (target := host_port(address)) is None:
        return
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as exc:
        raise DatasetError(f"cannot reach Ray at {address}: {exc.strerror or exc}") from None


def resolve(address: str) -> str:
    """`auto` as Ray reads it (RAY_ADDRESS, else the cluster that `ray start` recorded), so that
    it is checked like any address."""
    if address != "auto":
        return address
    from ray._private.services import canonicalize_bootstrap_address_or_die

    try:
        return canonicalize_bootstrap_address_or_die("auto")
    except Exception as exc:
        raise DatasetError(f"--ray-address auto: {str(exc).splitlines()[0]}") from None


def match_cluster_auth(address: str) -> None:
    """Give this driver the cluster's authentication mode, before `ray.init`, which would retry a
    refused token for a minute, a warning a second, then fail without saying why.

    Ray (2.60 here) checks tokens both ways: a cluster started with `ray start --head` on a
    machine that has a token (~/.ray/auth_token, which any local `ray.init()` writes) refuses a
    driver without it, and a driver in token mode refuses calls from workers of a cluster
    without authentication. Ray sends a token only under RAY_AUTH_MODE=token, which it never
    sets for a driver given an address (ray/_private/worker.py). So ask the cluster's GCS.
    """
    try:
        from ray._raylet import AuthenticationTokenLoader
    except ImportError:  # a Ray without token authentication
        return
    if "://" in address:  # Ray Client: no GCS to ask, and a token to a client server is harmless
        if "RAY_AUTH_MODE" not in os.environ and AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True):
            set_auth_mode("token")
        return
    asked = os.environ.get("RAY_AUTH_MODE", "").lower()
    set_auth_mode("disabled")
    if not gcs_refuses(address):
        return
    # RAY_AUTH_TOKEN, else the file at RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token (Ray's order)
    if asked != "disabled" and AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True):
        set_auth_mode("token")
        if not gcs_refuses(address):
            return
        why = f"refused this machine's token (from {token_source()})"
    elif asked == "disabled":
        why = "needs an authentication token, and RAY_AUTH_MODE=disabled here sends none (unset it)"
    else:
        why = "needs an authentication token and this machine has none"
    raise DatasetError(f"Ray at {address} {why}: {TOKEN_HELP}")


def set_auth_mode(mode: str) -> None:
    from ray._raylet import Config

    os.environ["RAY_AUTH_MODE"] = mode
    Config.initialize("")  # Ray caches its config: make it read the mode again


def gcs_refuses(address: str) -> bool:
    """Whether the cluster's GCS refuses this process's token, or its lack of one: one call."""
    import ray
    from ray._raylet import GcsClient

    try:
        with native_stderr_silenced():  # Ray logs each refusal in C++ on top of raising it
            GcsClient(address=address)
    except ray.exceptions.AuthenticationError:
        return True
    except Exception as exc:
        raise DatasetError(f"cannot join Ray at {address}: {str(exc).splitlines()[0]}") from None
    return False


def token_source() -> str:
    """Where Ray read this machine's token from, named, never shown."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    return os.environ.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token"


@contextlib.contextmanager
def native_stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def shipped_packages() -> dict[str, Any]:
    """The runtime environment that carries anyres's packages to nodes that lack them; Ray
    unpacks them on each node and puts them first on the workers' path."""
    import importlib

    roots = [Path(importlib.import_module(name).__file__).parent for name in SHIPPED]
    big = sorted({f"/{p.relative_to(root)}" for root in roots for p in root.rglob("*")
                  if p.is_file() and p.stat().st_size > MAX_SHIPPED_FILE})
    return {"py_modules": [str(root) for root in roots],
            "excludes": ["__pycache__/", "*.py[cod]", *big]}


class RayEngine:
    """`address` None or "local": a private Ray on this machine, whatever else runs here.
    Otherwise join that cluster, shipping anyres's packages unless `ship` is False."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, ship: bool = True):
        import ray

        self._ray = ray
        self._owned = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "logging_level": logging.ERROR}
            private = not address or address == "local"
            if private:
                # "local", not None: None joins RAY_ADDRESS or the cluster that `ray start` last
                # recorded on this machine (/tmp/ray/ray_current_cluster), even a dead one.
                options.update(num_cpus=num_cpus or os.cpu_count(), object_store_memory=OBJECT_STORE_BYTES)
            else:
                address = resolve(address)
                check_reachable(address)
                match_cluster_auth(address)
                if ship:
                    options["runtime_env"] = shipped_packages()
            try:
                ray.init(address="local" if private else address, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise DatasetError(f"cannot start or join Ray ({address or 'local'}): {exc}") from None
            self._owned = True
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def run(self, slices, work, source, config, progress, done) -> None:
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # On the driver's node: a lost worker node must not take the progress counts with it.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        sink = _sink_actor(ray).options(scheduling_strategy=here).remote()
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
    import ray

    done = run_slice(work, task, source, config, report=lambda delta: sink.add.remote(delta))
    return {**done, "node": ray.get_runtime_context().get_node_id()}  # where it ran, for cluster checks


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
