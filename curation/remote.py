"""A folder at an object store URL (`s3://bucket/prefix`, or any fsspec URL), written object by
object: what a run whose `--out` is a URL reads and writes there (`store.py` commits slices
in it, `publish.py` uploads the dataset to it).

Credentials are the filesystem's own business (for S3: the AWS environment variables, the
shared config and credentials files, or an instance role, on every node); anyres never reads,
passes or records them, and URLs with credentials in them are refused.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.core import url_to_fs

from shards import DatasetError
from shards.storage.location import io_errors

MAX_RECORD_BYTES = 16 * 2**20  # a marker or config.json read back: small by construction


def is_remote(out: str) -> bool:
    return "://" in out and not out.startswith("file://")


@dataclass(frozen=True)
class RemoteFolder:
    """A folder at an fsspec URL, written object by object. It pickles (fsspec filesystems do,
    with the options they were made with, never credentials from the environment), so slice
    tasks on other nodes carry it."""

    url: str
    root: str
    fs: fsspec.AbstractFileSystem

    @classmethod
    def parse(cls, url: str) -> RemoteFolder:
        scheme = url.split("://", 1)[0].lower()
        if scheme in ("http", "https"):
            raise DatasetError(f"cannot write a dataset to {url}: http(s) is read-only; "
                               "use an object store URL such as s3://bucket/prefix")
        if urlsplit(url).password is not None or "@" in url.split("://", 1)[1].split("/", 1)[0]:
            # s3://KEY:SECRET@bucket would put a secret into every message and record
            raise DatasetError("refusing a URL with credentials in it: give them through the environment "
                               "or the storage's config files")
        where = url.split("://", 1)[1].strip("/")
        if not where or any(part in ("", ".", "..") for part in where.split("/")):
            raise DatasetError(f"--out {url!r} must name a bucket or folder and a plain path in it, "
                               "e.g. s3://bucket/datasets/photos")
        if scheme == "memory":  # it would vanish with this process, and Ray workers write elsewhere
            raise DatasetError("--out memory:// keeps nothing: use a folder or an object store")
        try:
            fs, root = url_to_fs(url)
        except (ImportError, ValueError, OSError) as exc:
            raise DatasetError(f"cannot open {url}: {str(exc)[:300]}") from None
        return cls(url.rstrip("/"), root.rstrip("/"), fs)

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}" if relative else self.root

    def display(self, relative: str = "") -> str:
        return f"{self.url}/{relative}" if relative else self.url

    def child(self, relative: str) -> RemoteFolder:
        return RemoteFolder(self.display(relative), self.path(relative), self.fs)

    def _io(self, what: str, relative: str, call: Callable[[], Any], missing_ok: bool = False) -> Any:
        """`call()`, its storage errors as one line naming the URL; FileNotFoundError passes
        through where the caller handles a missing object."""
        try:
            return call()
        except FileNotFoundError as exc:
            if missing_ok:
                raise
            raise DatasetError(f"cannot {what} {self.display(relative)}: {str(exc)[:300]}") from None
        except (*io_errors(), ValueError) as exc:
            raise DatasetError(f"cannot {what} {self.display(relative)}: {str(exc)[:300]}") from None

    def read_json(self, relative: str) -> dict[str, Any] | None:
        try:
            size = self._io("read", relative, lambda: self.fs.size(self.path(relative)), missing_ok=True)
        except FileNotFoundError:
            return None
        if size is None or size > MAX_RECORD_BYTES:
            raise DatasetError(f"{self.display(relative)} is not a record of a curation run (size {size})")
        data = self._io("read", relative, lambda: self.fs.cat_file(self.path(relative)))
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise DatasetError(f"{self.display(relative)} is not a JSON object")
        return doc

    def put_bytes(self, relative: str, data: bytes) -> None:
        self._io("write", relative, lambda: self.fs.pipe_file(self.path(relative), data))

    def put_file(self, local: Path, relative: str) -> None:
        self._io("upload to", relative, lambda: self.fs.put_file(str(local), self.path(relative)))

    def put_folder(self, local: Path, relative: str) -> None:
        for file in sorted(p for p in local.rglob("*") if p.is_file()):
            self.put_file(file, f"{relative}/{file.relative_to(local).as_posix()}")

    def get_folder(self, relative: str, local: Path, skip: str | None = None) -> None:
        """Download the files under `relative`, except those under its subfolder `skip`."""
        prefix = self.path(relative)
        files = self._io("list", relative, lambda: self.fs.find(prefix))
        for remote in files:
            name = remote[len(prefix):].lstrip("/")
            target = local / name
            if not name or ".." in name.split("/"):
                raise DatasetError(f"refusing {remote}: not a plain name under {self.display(relative)}")
            if skip and name.startswith(f"{skip}/"):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            self._io("download", relative, lambda r=remote, t=target: self.fs.get_file(r, str(t)))

    def glob(self, pattern: str) -> list[str]:
        """Names matching `pattern`, relative to this folder, sorted."""
        try:
            found = self._io("list", "", lambda: self.fs.glob(self.path(pattern)), missing_ok=True)
        except FileNotFoundError:
            return []
        return sorted(path[len(self.root):].strip("/") for path in found)

    def abort_unfinished_uploads(self) -> int:
        """Drop the parts of multipart uploads a killed run left under this folder (S3 keeps
        them, invisible and billed, until aborted); how many. Other stores have none."""
        if not hasattr(self.fs, "list_multipart_uploads"):
            return 0
        bucket, _, prefix = self.root.partition("/")
        uploads = self._io("list uploads in", "", lambda: self.fs.list_multipart_uploads(bucket))
        mine = [u for u in uploads if u.get("Key", "").startswith(f"{prefix}/")]
        for upload in mine:
            self._io("abort an upload in", "", lambda u=upload: self.fs.abort_mpu(bucket, u["Key"], u["UploadId"]))
        return len(mine)

    def remove(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._io("remove", relative, lambda: self.fs.rm(self.path(relative), recursive=True), missing_ok=True)

    def is_empty(self) -> bool:
        try:
            return not self._io("list", "", lambda: self.fs.ls(self.root, detail=False), missing_ok=True)
        except FileNotFoundError:
            return True
