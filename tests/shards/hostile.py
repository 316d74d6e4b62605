"""Building hostile datasets: raw tar headers of every kind, and re-pinning after an edit.

An attacker who edits a dataset also rewrites its manifest so that the recorded hashes match
(`repin`): the defences under test must hold without the root hash to lean on. Headers are
built by hand, so a test can write exactly the member a tar library would refuse to make.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from shards.format.index import index_bytes, index_table
from shards.format.manifest import root_hash
from shards.format.tario import padded

SHARD0 = "shards/shard-000000.tar"


def ustar_header(name: bytes | str, size: int, kind: bytes = b"0", linkname: bytes = b"",
                 magic: bytes = b"ustar\x0000", size_field: bytes | None = None) -> bytes:
    """A 512-byte tar header with any name, type and size field, and a valid checksum."""
    name = name.encode() if isinstance(name, str) else name
    block = bytearray(512)
    block[0 : len(name)] = name[:100]
    block[100:108] = b"0000444\0"
    block[108:116] = block[116:124] = b"0000000\0"
    block[124:136] = size_field if size_field is not None else b"%011o\0" % size
    block[136:148] = b"%011o\0" % 946684800
    block[156:157] = kind
    block[157 : 157 + len(linkname)] = linkname
    block[257:265] = magic
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def member(name: str, data: bytes, kind: bytes = b"0") -> bytes:
    return ustar_header(name, len(data), kind) + data + b"\0" * (padded(len(data)) - len(data))


def pax_member(records: dict[str, str], name: str = "pax") -> bytes:
    body = b""
    for key, value in records.items():
        line = f" {key}={value}\n".encode()
        n = len(line) + 1
        while len(str(n)) + len(line) != n:
            n = len(str(n)) + len(line)
        body += str(n).encode() + line
    return member(name, body, kind=b"x")


def read_manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "dataset.json").read_text())


def write_manifest(root: Path, doc: dict[str, Any]) -> None:
    (root / "dataset.json").write_text(json.dumps(doc))


def repin(root: Path, sizes: bool = False) -> str:
    """Record the shards' and index's current hashes in the manifest, as a forger would; with
    `sizes`, also their byte counts. Returns the new root hash."""
    doc = read_manifest(root)
    read = []
    for entry in doc["shards"]:
        path = root / entry["name"]
        data = path.read_bytes() if path.is_file() else b""
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        if sizes:
            entry["nbytes"] = len(data)
        read.append({**entry, "nbytes": len(data)})
    if sizes:
        doc["total_bytes"] = sum(e["nbytes"] for e in doc["shards"])
    index = (root / "index.parquet").read_bytes()
    doc["root_hash"] = root_hash(hashlib.sha256(index).hexdigest(), len(index), read)
    write_manifest(root, doc)
    return doc["root_hash"]


def index_rows(root: Path) -> list[dict]:
    return pq.read_table(root / "index.parquet").to_pylist()


def write_index(root: Path, rows: list[dict], pin: bool = True) -> None:
    (root / "index.parquet").write_bytes(index_bytes(index_table(rows)))
    if pin:
        repin(root)


def append_members(tar_path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(tar_path, "a", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def replace_bytes(path: Path, at: int, new: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[at : at + len(new)] = new
    path.write_bytes(bytes(data))


def insert_bytes(path: Path, at: int, new: bytes) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:at] + new + data[at:])


def shard_blobs(root: Path, shard: str = SHARD0) -> list[bytes]:
    """The shard's members, each as its encoded bytes (header, data, padding)."""
    from shards.format.tario import iter_members

    with open(root / shard, "rb") as f:
        return [member(m.name, m.data) for m in iter_members(f)]


def rebuild(root: Path, blobs: list[bytes], shard: str = SHARD0, end: bytes = b"\0" * 1024) -> None:
    """Write a shard from encoded members, then point the index at wherever each row's image
    header now is and re-pin the manifest (sizes included): a consistent forgery."""
    data = b"".join(blobs) + end
    (root / shard).write_bytes(data)
    starts, at = {}, 0
    for blob in blobs:
        starts.setdefault(blob[:100].split(b"\0", 1)[0].decode("latin-1"), at + 512)
        at += len(blob)
    rows = index_rows(root)
    for row in rows:
        if row["shard"] == shard and f"{row['key']}.{row['ext']}" in starts:
            row["offset"] = starts[f"{row['key']}.{row['ext']}"]
    write_index(root, rows, pin=False)
    repin(root, sizes=True)


def with_checksum(header: bytes) -> bytes:
    block = bytearray(header)
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def make_world(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An honest 4-sample dataset, an output folder, and an `outside` folder nothing may touch
    (it holds a copy of the shard, as a target for escaping names, and a `conftest.py`)."""
    from tests.factories import make_dataset

    root, out, outside = tmp_path / "ds", tmp_path / "out", tmp_path / "outside"
    make_dataset(root, n=4)
    out.mkdir()
    outside.mkdir()
    (outside / "s1.tar").write_bytes((root / SHARD0).read_bytes())
    (outside / "conftest.py").write_text("# the user's own file\n")
    return root, out, outside
