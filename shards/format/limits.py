"""The bounds every read of a dataset stays within, because a dataset may come from anyone.

A dataset folder or URL is untrusted input (SECURITY.md): without bounds, an endless
`dataset.json`, a tar header claiming 8 GiB or a tiny parquet file of 20 million rows would take
all the memory or time there is. Each bound is generous for real datasets and can be raised by
an environment variable, so that every command and the training loader see the same setting
without a flag threaded through each of them.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from plumbing.errors import ConfigError

KiB, MiB, GiB = 2**10, 2**20, 2**30


@dataclass(frozen=True)
class Limits:
    max_manifest_bytes: int = 64 * MiB  # dataset.json
    max_index_bytes: int = 1 * GiB  # index.parquet, read whole
    max_samples: int = 20_000_000  # index rows (also checked against num_samples)
    # A real index row costs at least this many bytes on disk: every row has its own key and
    # sha256, which no compression removes. A smaller file claiming more rows is a bomb.
    min_index_bytes_per_row: int = 8
    max_index_memory: int = 16 * GiB  # decoded index columns, as parquet's metadata states them
    max_json_bytes: int = 1 * MiB  # one sample's KEY.json member
    max_json_depth: int = 32  # nesting of any JSON document read from a dataset
    max_member_bytes: int = 2 * GiB  # one image member
    max_pixels: int = 200_000_000  # stored width x height, checked before decoding
    max_jpeg_scans: int = 100  # progressive JPEG scans (each one costs a full decoding pass)
    request_seconds: float = 300.0  # one HTTP request, start to last byte
    stall_seconds: float = 60.0  # an HTTP connection that sends nothing for this long

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not value > 0 or value != value or value == float("inf"):
                raise ConfigError(f"limit {f.name} must be a positive finite number, got {value!r}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Limits:
        """Defaults, each overridden by `ANYRES_<NAME>` (e.g. ANYRES_MAX_JSON_BYTES=4194304)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            text = environ.get(env_name(f.name))
            if text is None:
                continue
            kind = float if f.type in (float, "float") else int
            try:
                values[f.name] = kind(text)
            except ValueError:
                raise ConfigError(f"{env_name(f.name)}={text!r} is not a {kind.__name__}") from None
        return cls(**values)


def env_name(field_name: str) -> str:
    return "ANYRES_" + field_name.upper()


def describe() -> list[tuple[str, str, str]]:
    """(environment variable, default, field) for every bound: what SECURITY.md lists."""
    return [(env_name(f.name), repr(f.default), f.name) for f in dataclasses.fields(Limits)]
