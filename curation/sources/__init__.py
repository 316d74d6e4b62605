"""Where items come from: the source interface; the sources are its submodules (`folder`,
`urllist`, `flickr`).

A source is a replaceable part. It lists its items in a stable order, streaming, on the driver;
and it gives each worker an `opener` that turns an item into bytes or raises `FetchError`.
Items travel to workers in slices, so a source must pickle (plain fields only; clients are made
by `opener` inside the worker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ..http import FetchConfig
from ..items import Item

Opener = Callable[[Item], bytes]


class Source(Protocol):
    kind: str

    def describe(self) -> dict[str, Any]: ...  # saved in the manifest's curation.sources

    def items(self) -> Iterator[Item]: ...

    def count(self) -> int | None: ...  # for the progress bar; None when unknown

    def opener(self, config: FetchConfig) -> Opener: ...
