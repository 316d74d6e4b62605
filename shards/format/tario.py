"""Tar members with fixed metadata, their exact byte cost, and a strict reader of them.

Shards are written member by member rather than through `tarfile.TarFile` so that the writer
knows, before writing, how many bytes a sample will take (headers and padding included) and
where each member's data starts.

Reading does not use `tarfile`: tar has extended headers (pax, GNU long names), sparse members
and links, which `tarfile` honours and a by-offset reader cannot, so a shard could show one
thing to a streaming check and another to a seek. Its pax parser also had a quadratic regex
(CVE-2024-6232). A shard holds only plain ustar regular files, so 512-byte headers are parsed
here and anything else is refused: streaming and seeking then read the same bytes.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from shards.format.schema import FormatError

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
# A fixed modification time (2000-01-01 UTC) so that the same input gives the same bytes.
FIXED_MTIME = 946684800
MEMBER_MODE = 0o444
USTAR_MAGIC = b"ustar\x0000"  # magic and version of POSIX ustar; GNU tar writes "ustar  \0"
REGULAR_TYPES = (b"0", b"\0")
_TYPE_NAMES = {b"1": "hard link", b"2": "symlink", b"3": "character device", b"4": "block device",
               b"5": "directory", b"6": "FIFO", b"7": "contiguous file", b"x": "pax extended header",
               b"g": "pax global header", b"L": "GNU long name", b"K": "GNU long link name",
               b"S": "GNU sparse file"}
_NAME = re.compile(rb"[\x21-\x7e]{1,100}")  # printable ASCII, no spaces, no NUL


class TarFormatError(FormatError):
    """A shard that breaks the plain-ustar contract: the rest of it cannot be trusted."""


class TruncatedError(TarFormatError):
    """The file ends where a header was due: members before it are whole, no end-of-archive."""

    def __init__(self, message: str, at: int):
        super().__init__(message)
        self.at = at  # the file's length


def padded(nbytes: int) -> int:
    """Bytes that `nbytes` of data occupy in a tar, rounded up to whole blocks."""
    return -(-nbytes // BLOCK) * BLOCK


def member_header(name: str, nbytes: int) -> bytes:
    # Writing through TarInfo is safe (no parsing); USTAR_FORMAT never emits pax records.
    info = tarfile.TarInfo(name)
    info.size = nbytes
    info.mtime = FIXED_MTIME
    info.mode = MEMBER_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.USTAR_FORMAT, encoding="ascii", errors="strict")


def member_cost(name: str, nbytes: int) -> int:
    return len(member_header(name, 0)) + padded(nbytes)


def encode_member(name: str, data: bytes) -> tuple[bytes, int]:
    """The member's bytes, and the offset of its data within them."""
    header = member_header(name, len(data))
    pad = padded(len(data)) - len(data)
    return header + data + b"\0" * pad, len(header)


@dataclass(frozen=True)
class Header:
    name: str
    size: int


def _octal(field: bytes, what: str) -> int:
    # Plain octal digits, ended by NUL or space; GNU's base-256 sizes (first byte 0x80) are refused.
    digits = field.rstrip(b"\0 ").lstrip(b" ")
    if not digits or not all(48 <= c <= 55 for c in digits):
        raise TarFormatError(f"{what} field {field!r} is not octal")
    return int(digits, 8)


def parse_header(block: bytes) -> Header:
    """One 512-byte header of a plain ustar regular file, or TarFormatError saying why not."""
    if len(block) != BLOCK:
        raise TarFormatError(f"header cut short ({len(block)} of {BLOCK} bytes)")
    if not any(block):
        raise TarFormatError("end-of-archive block where a member header was expected")
    checksum = _octal(block[148:156], "checksum")
    if checksum != sum(block[:148]) + 8 * 32 + sum(block[156:]):
        raise TarFormatError("header checksum does not match")
    kind = block[156:157]
    if kind not in REGULAR_TYPES:
        what = _TYPE_NAMES.get(kind, f"type {kind!r}")
        raise TarFormatError(f"{what} member: shards hold plain ustar regular files only")
    if block[257:265] != USTAR_MAGIC:
        raise TarFormatError(f"not a POSIX ustar header (magic {block[257:265]!r})")
    if any(block[157:257]) or any(block[345:500]):
        raise TarFormatError("header has a link name or a name prefix: not a plain member")
    raw_name = block[:100].split(b"\0", 1)[0]
    if not _NAME.fullmatch(raw_name) or any(block[len(raw_name):100]):
        raise TarFormatError(f"member name {raw_name[:100]!r} is not plain printable ASCII")
    return Header(raw_name.decode("ascii"), _octal(block[124:136], "size"))


@dataclass(frozen=True)
class Member:
    name: str
    offset: int  # of the data, in bytes from the start of the shard
    data: bytes

    @property
    def key(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def ext(self) -> str:
        return self.name.split(".", 1)[1] if "." in self.name else ""


class MemberReader:
    """Members of a tar stream in order, each read whole within a size bound.

    `position` counts the bytes consumed; `end` is set once the end-of-archive blocks have been
    read, so a caller can tell a complete shard from one cut short.
    """

    def __init__(self, fileobj, max_member_bytes: int, max_json_bytes: int, max_bytes: int | None = None):
        self.fileobj = fileobj
        self.max_member_bytes = max_member_bytes
        self.max_json_bytes = max_json_bytes
        self.max_bytes = max_bytes  # the shard's size as the manifest states it, when known
        self.position = 0
        self.end: int | None = None

    def _read(self, n: int, what: str, header: bool = False) -> bytes:
        chunks, wanted = [], n
        while wanted:
            chunk = self.fileobj.read(min(wanted, 1 << 22))
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
        data = b"".join(chunks)
        self.position += len(data)
        if len(data) != n:
            if self.position == 0:
                raise TarFormatError("empty file")
            if header:
                raise TruncatedError(f"truncated: the file ends at byte {self.position} without an end-of-archive",
                                     self.position)
            raise TarFormatError(f"unexpected end of data in {what} (the file ends at byte {self.position})")
        return data

    def __iter__(self) -> Iterator[Member]:
        while True:
            start = self.position
            block = self._read(BLOCK, f"the header at byte {start}", header=True)
            if not any(block):
                if any(self._read(BLOCK, "the end-of-archive", header=True)):
                    raise TarFormatError(f"damaged end-of-archive at byte {start}")
                self.end = self.position
                return
            try:
                header = parse_header(block)
            except TarFormatError as exc:
                raise TarFormatError(f"corrupt tar header at byte {start} ({exc})") from None
            yield Member(header.name, self.position, self._read_data(header, start))

    def _read_data(self, header: Header, start: int) -> bytes:
        limit = self.max_json_bytes if header.name.endswith(".json") else self.max_member_bytes
        if header.size > limit:
            raise TarFormatError(f"member {header.name} at byte {start} claims {header.size} bytes, "
                                 f"over the bound of {limit} (SECURITY.md: limits)")
        if self.max_bytes is not None and self.position + padded(header.size) > self.max_bytes:
            raise TarFormatError(f"member {header.name} at byte {start} claims {header.size} bytes, "
                                 f"past the shard's end at byte {self.max_bytes} (its manifest size)")
        data = self._read(header.size, f"member {header.name}")
        self._read(padded(header.size) - header.size, f"member {header.name}")  # padding, not copied out
        return data


def iter_members(fileobj, max_member_bytes: int = 2**31, max_json_bytes: int = 2**20,
                 max_bytes: int | None = None) -> Iterator[Member]:
    """Members of a tar stream; raises TarFormatError at the first that breaks the contract."""
    return iter(MemberReader(fileobj, max_member_bytes, max_json_bytes, max_bytes))
