"""Joining an existing Ray cluster (`--ray-address`), the way its users start clusters.

The driver takes the cluster's authentication mode, sending this machine's Ray token where the
cluster checks one (`ray start --head` does by default); a missing or refused token is one
line, before `ray.init` starts retrying; and anyres's own packages travel with the job, so
nodes need Ray and the dependencies, not anyres. Ray offers no public API for the first two,
so this module alone touches Ray's private ones.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shards import DatasetError

SHIPPED = ("plumbing", "shards", "curation")  # all that slice tasks import; training (torch) stays home
MAX_SHIPPED_FILE = 2**20  # the packages are sources of a few kB; anything bigger is not code
TOKEN_HELP = ("copy the head node's ~/.ray/auth_token to ~/.ray/auth_token here, or set RAY_AUTH_TOKEN_PATH "
              "to a copy of it")


def join_options(address: str, ship: bool) -> tuple[str, dict[str, Any]]:
    """The address for `ray.init` and the options that join the cluster there: checked
    reachable, in the cluster's authentication mode, with anyres's packages unless `ship` is
    False (nodes that have them installed)."""
    address = resolve(address)
    check_reachable(address)
    match_cluster_auth(address)
    return address, {"runtime_env": shipped_packages()} if ship else {}


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
