"""Where a dataset lives (a local folder, an http(s) URL prefix, any fsspec URL), and the one
gate every read of it passes: names confined to the dataset, reads bounded.

Names inside a dataset (`dataset.json`, `index.parquet`, the shard names its manifest and index
give) are untrusted. Each is checked to be a plain relative path, so it cannot climb out with
`..`, start at `/`, or become another URL (`//host/x`, `file://...`). A local file is opened
without following symlinks anywhere below the dataset folder and must be a regular file (a FIFO
would hang the reader); an http(s) dataset is read through `shards.storage.http`, which stays on the
dataset's origin.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

import fsspec
from fsspec.core import url_to_fs

from plumbing.errors import DatasetError
from shards.format.limits import Limits
from shards.storage.http import HttpClient, HttpStream


def io_errors() -> tuple[type[Exception], ...]:
    """What a storage read may raise besides DatasetError. Some fsspec filesystems raise
    aiohttp's errors as they are, not OSError; aiohttp is looked up, not imported, since only
    such a filesystem loads it (importing it costs every command a tenth of a second)."""
    aiohttp = sys.modules.get("aiohttp")
    return (OSError, aiohttp.ClientError) if aiohttp is not None else (OSError,)

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
MAX_DEPTH = 8


def check_relative(name: str) -> str:
    """A name inside a dataset: relative, normalised, plain segments (none is `.` or `..`)."""
    if not isinstance(name, str):
        raise DatasetError(f"a path inside the dataset must be a string, got {type(name).__name__}")
    segments = name.split("/")
    if len(segments) > MAX_DEPTH or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise DatasetError(f"refusing the path {name[:200]!r}: not a plain relative path inside the dataset")
    return name


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


@dataclass(frozen=True)
class Location:
    kind: str  # "local", "http" or "fsspec"
    root: str  # the dataset folder: a local path, a URL, or the filesystem's own path syntax
    url: str  # as the user gave it, for messages
    limits: Limits = field(default_factory=Limits.from_env)
    fs: fsspec.AbstractFileSystem | None = None  # for kind "fsspec" only
    http: HttpClient | None = None  # for kind "http" only

    @classmethod
    def parse(cls, url: str | Path, limits: Limits | None = None) -> Location:
        limits = limits or Limits.from_env()
        text = str(url)
        if text.startswith("file://"):
            text = text[len("file://"):]
        if "://" not in text:
            root = str(Path(text).expanduser().absolute())
            return cls("local", root.rstrip("/") or "/", str(url), limits)
        if text.split("://", 1)[0].lower() in ("http", "https"):
            return cls("http", text.rstrip("/"), str(url), limits, http=HttpClient(limits))
        try:
            fs, root = url_to_fs(text)
        except (ImportError, ValueError) as exc:
            raise DatasetError(f"cannot open {text}: {exc}") from None
        return cls("fsspec", root.rstrip("/") or "/", str(url), limits, fs=fs)

    @property
    def is_local(self) -> bool:
        return self.kind == "local" or (self.fs is not None and "file" in _protocols(self.fs))

    def path(self, relative: str) -> str:
        return posixpath.join(self.root, check_relative(relative)) if relative else self.root

    def display(self, relative: str = "") -> str:
        return posixpath.join(self.url.rstrip("/"), relative) if relative else self.url

    # Local files: confined and regular, checked on the open descriptor itself.

    def _open_fd(self, relative: str) -> int:
        # Component by component from the dataset folder, none followed if it is a symlink: a
        # name cannot leave the folder through a link, and the check is the open itself.
        parts = check_relative(relative).split("/") if relative else []
        cloexec = getattr(os, "O_CLOEXEC", 0)
        try:
            if not parts:  # a shard path the user gave: theirs to choose, but it must be a file
                fd = os.open(self.root, os.O_RDONLY | os.O_NONBLOCK | cloexec)
            else:
                fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | cloexec)
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                flags = os.O_RDONLY | os.O_NOFOLLOW | cloexec | (os.O_NONBLOCK if last else os.O_DIRECTORY)
                try:
                    child = os.open(part, flags, dir_fd=fd)
                finally:
                    os.close(fd)
                fd = child
        except FileNotFoundError:
            raise DatasetError(f"missing file: {self.display(relative)}") from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise DatasetError(f"refusing {self.display(relative)}: a symlink (or not a plain path) "
                                   "inside the dataset") from None
            raise DatasetError(f"cannot open {self.display(relative)}: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise DatasetError(f"refusing {self.display(relative)}: not a regular file")
        return fd

    def exists(self, relative: str = "") -> bool:
        try:
            if self.kind == "local":
                return os.path.lexists(self.path(relative))
            if self.kind == "http":
                return self.http.exists(self.path(relative) + ("" if relative else "/"))
            return bool(self.fs.exists(self.path(relative)))
        except (*io_errors(), ValueError):
            return False

    def size(self, relative: str) -> int | None:
        try:
            if self.kind == "local":
                st = os.lstat(self.path(relative))
                return st.st_size if stat.S_ISREG(st.st_mode) else None
            if self.kind == "http":
                return self.http.size(self.path(relative))
            return self.fs.size(self.path(relative))
        except (*io_errors(), ValueError, DatasetError):
            return None

    def read_file(self, relative: str, limit: int) -> bytes:
        """A whole (small) file, refused when it holds more than `limit` bytes."""
        if self.kind == "http":  # refuses a longer body itself, whatever its headers say
            return self._read(relative, None, limit)
        data = self._read(relative, None, limit + 1)
        if len(data) > limit:
            raise DatasetError(f"{self.display(relative)} is larger than the bound of {limit} bytes "
                               f"(SECURITY.md: limits)")
        return data

    def read_bytes(self, relative: str, start: int, end: int) -> bytes:
        """Bytes [start, end) by one ranged read (a seek locally); fewer at the end of the file."""
        if not 0 <= start <= end:
            raise DatasetError(f"bad byte range {start}..{end} in {self.display(relative)}")
        return self._read(relative, start, end)

    def read_pieces(self, relative: str, pieces: list[tuple[int, int]]) -> list[bytes]:
        """Several byte ranges of one file: one open and a pread each locally (no copies of a
        large middle piece), one covering ranged request remotely."""
        if not all(0 <= start <= end for start, end in pieces):
            raise DatasetError(f"bad byte ranges {pieces} in {self.display(relative)}")
        if self.kind == "local":
            fd = self._open_fd(relative)
            try:
                return [_pread_all(fd, end - start, start) for start, end in pieces]
            finally:
                os.close(fd)
        low, high = min(p[0] for p in pieces), max(p[1] for p in pieces)
        blob = self.read_bytes(relative, low, high)
        return [blob[start - low : end - low] for start, end in pieces]

    def _read(self, relative: str, start: int | None, end: int) -> bytes:
        path = self.path(relative)
        try:
            if self.kind == "local":
                fd = self._open_fd(relative)
                try:
                    return _pread_all(fd, end - (start or 0), start or 0)
                finally:
                    os.close(fd)
            if self.kind == "http":
                if start is None:
                    return self.http.read(path, end)
                return self.http.read_range(path, start, end)
            with self.fs.open(path, "rb") as f:
                f.seek(start or 0)
                return f.read(end - (start or 0))
        except FileNotFoundError:
            raise DatasetError(f"missing file: {self.display(relative)}") from None
        except io_errors() as exc:
            raise DatasetError(f"cannot read {self.display(relative)}: {exc}") from None

    def open(self, relative: str):
        """A file object to read front to back (callers bound how much they read)."""
        try:
            if self.kind == "local":
                return os.fdopen(self._open_fd(relative), "rb")
            if self.kind == "http":
                return HttpStream(self.http, self.path(relative))
            return self.fs.open(self.path(relative), "rb")
        except FileNotFoundError:
            raise DatasetError(f"missing file: {self.display(relative)}") from None
        except io_errors() as exc:
            raise DatasetError(f"cannot open {self.display(relative)}: {exc}") from None

    def list_local(self, relative: str) -> list[str]:
        """Names in a local folder of the dataset, relative to the dataset (for verify)."""
        folder = self.path(relative)
        if self.kind != "local" or not os.path.isdir(folder) or os.path.islink(folder):
            return []
        return sorted(posixpath.join(relative, name) for name in os.listdir(folder))


def _pread_all(fd: int, n: int, offset: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = os.pread(fd, min(n, 1 << 24), offset)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)
