"""Where a dataset lives: a local folder, an http(s) URL prefix, or any fsspec URL.

Every reader goes through `Location`, so local and remote datasets take the same code path.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

import fsspec
from fsspec.core import url_to_fs

from .errors import DatasetError

try:  # fsspec's HTTP filesystem raises aiohttp's errors (416, 5xx) as they are, not OSError
    from aiohttp import ClientError as _HttpError
except ImportError:  # pragma: no cover - aiohttp is a dependency, but fsspec works without it
    class _HttpError(Exception):
        pass

IO_ERRORS = (OSError, _HttpError)


@dataclass(frozen=True)
class Location:
    fs: fsspec.AbstractFileSystem
    root: str  # the dataset folder, in the filesystem's own path syntax
    url: str  # as the user gave it, for messages

    @classmethod
    def parse(cls, url: str | Path) -> Location:
        text = str(url)
        if "://" not in text:
            text = str(Path(text).expanduser().absolute())
        try:
            fs, root = url_to_fs(text)
        except (ImportError, ValueError) as exc:
            raise DatasetError(f"cannot open {text}: {exc}") from None
        return cls(fs=fs, root=root.rstrip("/") or "/", url=str(url))

    @property
    def is_local(self) -> bool:
        return "file" in _protocols(self.fs)

    def path(self, relative: str) -> str:
        return posixpath.join(self.root, relative) if relative else self.root

    def display(self, relative: str = "") -> str:
        return posixpath.join(self.url.rstrip("/"), relative) if relative else self.url

    def exists(self, relative: str = "") -> bool:
        try:
            return bool(self.fs.exists(self.path(relative)))
        except (*IO_ERRORS, ValueError):
            return False

    def read_bytes(self, relative: str, start: int | None = None, end: int | None = None) -> bytes:
        """Whole file, or bytes [start, end) by one ranged read (a seek locally)."""
        path = self.path(relative)
        try:
            if start is None and end is None:
                return self.fs.cat_file(path)
            return self.fs.cat_file(path, start=start, end=end)
        except FileNotFoundError:
            raise DatasetError(f"missing file: {self.display(relative)}") from None
        except IO_ERRORS as exc:
            raise DatasetError(f"cannot read {self.display(relative)}: {exc}") from None

    def open(self, relative: str):
        try:
            return self.fs.open(self.path(relative), "rb")
        except FileNotFoundError:
            raise DatasetError(f"missing file: {self.display(relative)}") from None
        except IO_ERRORS as exc:
            raise DatasetError(f"cannot open {self.display(relative)}: {exc}") from None

    def size(self, relative: str) -> int | None:
        try:
            return self.fs.size(self.path(relative))
        except (*IO_ERRORS, ValueError):
            return None


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
