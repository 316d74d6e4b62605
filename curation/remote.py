"""A curation whose `--out` is an object store (`s3://bucket/prefix`, or any fsspec URL).

Object stores have no rename and no partial reads of a file being written, so a remote run
works in three places:
- each slice is fetched into a private local folder on whichever node runs it, uploaded under
  `work/staging/slice-NNNNNN/<attempt>/`, and committed by one small object written last, the
  marker `slice-NNNNNN/done.json` naming the attempt. An attempt without a marker (a killed
  task, a lost node) is never read; a slice's second attempt writes its own folder;
- the driver pulls committed slices' records (index, rejects, signatures) into a local mirror
  of the dataset (`--scratch`), where dedup and pack run exactly as for a local `--out`; pack
  reads the staged samples from the URL and writes the final shards into the mirror;
- publishing uploads the packed dataset: each shard whole under its final name (an object
  store shows an object only once its upload completes, so a reader never sees part of one),
  then the work records, then the index, and the manifest last, the commit point.
A kill at any point resumes on rerun: committed slices are not fetched again, and a dataset
packed in the mirror but not fully uploaded is uploaded again.

Credentials are the filesystem's own business (for S3: the AWS environment variables, the
shared config and credentials files, or an instance role, on every node); anyres never reads,
passes or records them, and URLs with credentials in them are refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.core import url_to_fs

from plumbing.atomic import atomic_write_json
from shards import DatasetError
from shards.format.manifest import INDEX_NAME, MANIFEST_NAME, SHARD_DIR, WORK_DIR
from shards.storage.location import io_errors

STAGING = f"{WORK_DIR}/staging"
DONE_NAME = "done.json"  # a slice's completion record, here and in the work folder


def slice_name(number: int) -> str:
    """A slice's folder name, in the work folder and at the URL."""
    return f"slice-{number:06d}"
MAX_RECORD_BYTES = 16 * 2**20  # a marker or config.json read back: small by construction


def is_remote(out: str) -> bool:
    return "://" in out and not out.startswith("file://")


def default_scratch() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "anyres" / "curate"


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


# Slices: staged on any node, committed by a marker, pulled into the driver's mirror.

def commit_slice(staging: RemoteFolder, number: int, folder: Path, done: dict[str, Any]) -> dict[str, Any]:
    """Upload a finished slice folder as a new attempt, then its marker: the commit."""
    attempt = os.urandom(6).hex()
    try:
        staging.put_folder(folder, attempt_folder(number, attempt))
        staging.put_bytes(f"{slice_name(number)}/{DONE_NAME}", json.dumps({**done, "attempt": attempt}).encode())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return done


def remote_done(staging: RemoteFolder, number: int) -> dict[str, Any] | None:
    marker = staging.read_json(f"{slice_name(number)}/{DONE_NAME}")
    if marker is None:
        return None
    if not isinstance(marker.get("attempt"), str) or not marker["attempt"].isalnum():
        raise DatasetError(f"{staging.display(f'{slice_name(number)}/{DONE_NAME}')} names no attempt")
    return marker


def attempt_folder(number: int, attempt: str) -> str:
    return f"{slice_name(number)}/{attempt}"


def remote_markers(staging: RemoteFolder, skip: set[str]) -> Iterator[dict[str, Any]]:
    """The markers of slices committed at the URL, but for the slice folders named in `skip`."""
    for path in staging.glob(f"slice-*/{DONE_NAME}"):
        name = path.split("/")[0]
        if name not in skip and (marker := staging.read_json(f"{name}/{DONE_NAME}")) is not None:
            yield marker


def pull_slice(staging: RemoteFolder, number: int, final: Path) -> bool:
    """Download a committed slice's records (index, rejects, signatures) into the mirror's
    `final` folder, its marker as `done.json`; False where none is committed yet. Its shards
    stay at the URL: pack reads them there, so the driver's disk holds the dataset once."""
    marker = remote_done(staging, number)
    if marker is None:
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    part = Path(tempfile.mkdtemp(prefix=f"{final.name}.part-pull", dir=final.parent))
    try:
        staging.get_folder(attempt_folder(number, marker["attempt"]), part, skip=SHARD_DIR)
        (part / DONE_NAME).write_text(json.dumps(marker))
        os.replace(part, final)
    finally:
        shutil.rmtree(part, ignore_errors=True)
    return True


def private_folder(prefix: str) -> Path:
    """A slice's folder on the node that runs it: the local temporary directory, since the
    driver's mirror path means nothing on another machine."""
    return Path(tempfile.mkdtemp(prefix=prefix))


# The dataset: its mirror, and publishing it.

@dataclass(frozen=True)
class RemoteOut:
    target: RemoteFolder
    mirror: Path

    @classmethod
    def parse(cls, url: str, scratch: str | Path | None = None) -> RemoteOut:
        target = RemoteFolder.parse(url)
        digest = hashlib.sha256(f"{target.fs.protocol}|{target.root}".encode()).hexdigest()[:16]
        return cls(target, Path(scratch or default_scratch()).absolute() / digest)

    @property
    def staging(self) -> RemoteFolder:
        return self.target.child(STAGING)

    def manifest(self) -> dict[str, Any] | None:
        return self.target.read_json(MANIFEST_NAME)

    def saved(self) -> dict[str, Any] | None:
        return self.target.read_json(f"{WORK_DIR}/config.json")

    def upload_config(self) -> None:
        self.target.put_file(self.mirror / WORK_DIR / "config.json", f"{WORK_DIR}/config.json")

    def adopt_config(self) -> None:
        """A run begun on another machine: its config comes down, so the identity check and
        the committed slices carry over."""
        local = self.mirror / WORK_DIR / "config.json"
        if local.exists():
            return
        saved = self.saved()
        if saved is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(local, saved, indent=2)

    def discard(self) -> None:
        for name in (MANIFEST_NAME, INDEX_NAME, SHARD_DIR, WORK_DIR):
            self.target.remove(name)

    def publish(self, files: Iterable[str], advance: Callable[[int], None]) -> None:
        """Upload the mirror's dataset: `files` (the shards, then the records) whole, then the
        index, then the manifest, last."""
        for name in [*files, INDEX_NAME, MANIFEST_NAME]:
            self.target.put_file(self.mirror / name, name)
            advance(1)
        self.target.remove(STAGING)
        self.target.abort_unfinished_uploads()
