"""Where items come from: the source interface, and the folder source.

A source is a replaceable part (the Flickr source of a later issue plugs in here). It lists
its items in a stable order, streaming, on the driver; and it gives each worker an `opener`
that turns an item into bytes or raises `FetchError`. Items travel to workers in slices, so a
source must pickle (plain fields only; clients are made by `opener` inside the worker).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shards import DatasetError
from shards.pack import IMAGE_SUFFIXES

from .http import FetchConfig
from .items import FetchError, Item

Opener = Callable[[Item], bytes]


class Source(Protocol):
    kind: str

    def describe(self) -> dict[str, Any]: ...  # saved in the manifest's curation.sources

    def items(self) -> Iterator[Item]: ...

    def count(self) -> int | None: ...  # for the progress bar; None when unknown

    def opener(self, config: FetchConfig) -> Opener: ...


def read_file(path: str, max_bytes: int) -> bytes:
    try:
        st = os.stat(path)
        if not os.path.isfile(path):
            raise FetchError("not-a-file", "not a regular file (a device, fifo or socket)")
        if st.st_size > max_bytes:
            raise FetchError("too-large", f"{st.st_size} bytes, more than the cap of {max_bytes}")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FetchError("symlink-loop", exc.strerror or "too many levels of symbolic links") from None
        raise FetchError("unreadable", f"{exc.strerror or exc} ({type(exc).__name__})") from None
    if len(data) > max_bytes:  # it grew while we read it
        raise FetchError("too-large", f"more than the cap of {max_bytes} bytes")
    return data


@dataclass(frozen=True)
class FolderSource:
    """Every image file under a folder, recursively, in sorted order. Symlinked folders are
    followed (datasets are often assembled from links) unless they lead back to a folder on
    the current path, which is a loop and becomes a reject."""

    root: str
    kind: str = "folder"

    def __post_init__(self) -> None:
        if not Path(self.root).is_dir():
            raise DatasetError(f"not a folder: {self.root}")

    def describe(self) -> dict[str, Any]:
        return {"source": "folder", "path": str(Path(self.root).absolute())}

    def items(self) -> Iterator[Item]:
        root = Path(self.root).absolute()
        for position, (relative, absolute, error) in enumerate(_walk(root, "", [_dir_id(root)])):
            yield Item.for_file(position, relative, absolute, error=error,
                                provenance={"title": Path(relative).stem} if error is None else {})

    def count(self) -> int | None:
        return sum(1 for _ in self.items())

    def opener(self, config: FetchConfig) -> Opener:
        max_bytes = config.max_bytes
        return lambda item: read_file(item.location, max_bytes)


def _dir_id(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _walk(folder: Path, prefix: str, ancestors: list[tuple[int, int]]):
    """(relative path, absolute path, error) of image files, and of folders that cannot be
    walked (their error set), depth first in name order."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield prefix.rstrip("/") or ".", str(folder), ("unreadable", f"cannot list folder: {exc.strerror}")
        return
    for entry in entries:
        relative = prefix + entry.name
        try:
            is_dir = entry.is_dir()  # follows symlinks
        except OSError:  # a link to itself: not a folder; reading it says why
            is_dir = False
        if is_dir:
            try:
                ident = _dir_id(Path(entry.path))
            except OSError as exc:
                yield relative, entry.path, ("unreadable", f"cannot stat folder: {exc.strerror}")
                continue
            if ident in ancestors:
                target = os.path.realpath(entry.path)
                yield relative, entry.path, ("symlink-loop", f"folder link back to {target}")
                continue
            yield from _walk(Path(entry.path), relative + "/", [*ancestors, ident])
        elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
            yield relative, entry.path, None
