"""Tar members with fixed metadata, and the exact byte cost of each.

Shards are written member by member rather than through `tarfile.TarFile` so that the writer
knows, before writing, how many bytes a sample will take (headers and padding included) and
where each member's data starts. Reading goes through the standard `tarfile` module.
"""

from __future__ import annotations

import tarfile

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
# A fixed modification time (2000-01-01 UTC) so that the same input gives the same bytes.
FIXED_MTIME = 946684800
MEMBER_MODE = 0o444


def padded(nbytes: int) -> int:
    """Bytes that `nbytes` of data occupy in a tar, rounded up to whole blocks."""
    return -(-nbytes // BLOCK) * BLOCK


def member_header(name: str, nbytes: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = nbytes
    info.mtime = FIXED_MTIME
    info.mode = MEMBER_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    # ustar: keys are short ASCII names (schema.KEY_PATTERN), so no pax records are needed.
    return info.tobuf(format=tarfile.USTAR_FORMAT, encoding="ascii", errors="strict")


def member_cost(name: str, nbytes: int) -> int:
    return len(member_header(name, 0)) + padded(nbytes)


def encode_member(name: str, data: bytes) -> tuple[bytes, int]:
    """The member's bytes, and the offset of its data within them."""
    header = member_header(name, len(data))
    pad = padded(len(data)) - len(data)
    return header + data + b"\0" * pad, len(header)


def read_header(block: bytes) -> tarfile.TarInfo:
    """Parse one 512-byte ustar header (raises tarfile.HeaderError on a bad one)."""
    return tarfile.TarInfo.frombuf(block, encoding="utf-8", errors="surrogateescape")
