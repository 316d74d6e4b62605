"""The sample record of the anyres dataset format (DESIGN.md section 2), defined once.

`SampleMeta` is what a sample's `KEY.json` holds; the index has the same columns plus the
shard path and byte offset. Both are derived from `FIELDS`, so they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pyarrow as pa

from plumbing.errors import UserError

FORMAT_NAME = "anyres-shards"
FORMAT_VERSION = 1

# No dots: WebDataset splits a member name at its first dot into key and extension.
# 80 characters keeps `KEY.EXT` inside the 100-byte ustar name field.
KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,79}")
EXT_PATTERN = re.compile(r"[a-z0-9]{1,8}")

SOURCES = ("flickr", "url", "folder")


class FormatError(UserError, ValueError):
    """Data that breaks the dataset format (a bad key, a missing field, a wrong type)."""


MAX_JSON_DEPTH = 32
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # strict UTF-8 has none; only \uXXXX makes them


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def load_json(data: bytes, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from a dataset, which may be hostile: every way it can fail is a FormatError.

    Invalid UTF-8, NaN, integers too long to parse, nesting deeper than `max_depth` and lone
    surrogates (which cannot be printed or written back) are refused here, once, so that no
    later step meets them as a traceback.
    """
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise FormatError(f"{what} is not valid JSON: {str(exc)[:200]}") from None
    if data.count(b"[") + data.count(b"{") <= max_depth and not _SURROGATE_ESCAPE.search(data):
        return doc  # too few brackets to nest deeper, and no escape that makes a surrogate
    stack = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            raise FormatError(f"{what} nests deeper than {max_depth} levels")
        if isinstance(value, dict):
            stack.extend((k, depth + 1) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise FormatError(f"{what} holds a lone surrogate (\\ud800-\\udfff) in a string") from None
    return doc


def check_key(key: str) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise FormatError(
            f"invalid sample key {key!r}: must match {KEY_PATTERN.pattern} "
            "(lower-case letters, digits, '_' and '-', no dots, at most 80 characters)"
        )
    return key


def check_ext(ext: str) -> str:
    if not isinstance(ext, str) or not EXT_PATTERN.fullmatch(ext):
        raise FormatError(f"invalid member extension {ext!r}: must match {EXT_PATTERN.pattern}")
    return ext


@dataclasses.dataclass(frozen=True)
class ImageFacts:
    """What the stored bytes say about themselves, as probing finds them: the part of a
    sample's metadata that no source can choose."""

    width: int
    height: int
    orientation: int
    format: str
    ext: str
    mode: str
    nbytes: int
    sha256: str
    phash: str

    def facts(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(ImageFacts)}


@dataclasses.dataclass(frozen=True)
class SampleMeta(ImageFacts):
    # Field order here is irrelevant to the bytes: the json is written with sorted keys and
    # the index in FIELDS order.
    key: str
    source: str
    source_id: str
    url: str | None = None
    license: str | None = None
    license_url: str | None = None
    owner: str | None = None
    title: str | None = None
    date_taken: str | None = None
    dup_count: int = 0
    # Fields beyond the fixed columns (e.g. `duplicates`, the Flickr size label) live only in
    # the json member; the index keeps the fixed columns.
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_key(self.key)
        check_ext(self.ext)
        for name, kind in _FIELD_TYPES.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            # bool is an int subclass, and never a valid size or count.
            if not isinstance(value, kind) or isinstance(value, bool):
                raise FormatError(f"sample {self.key}: field {name!r} must be {kind.__name__}, got {value!r}")
            if kind is int and not _INT_RANGES[name][0] <= value <= _INT_RANGES[name][1]:
                raise FormatError(f"sample {self.key}: field {name!r} out of range: {value}")
        if self.width <= 0 or self.height <= 0:
            raise FormatError(f"sample {self.key}: non-positive size {self.width}x{self.height}")
        if not 1 <= self.orientation <= 8:
            raise FormatError(f"sample {self.key}: EXIF orientation {self.orientation} outside 1..8")
        if self.nbytes < 0 or self.dup_count < 0:
            raise FormatError(f"sample {self.key}: negative nbytes or dup_count")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise FormatError(f"sample {self.key}: sha256 must be 64 lower-case hex digits")
        if not re.fullmatch(r"[0-9a-f]{16}", self.phash):
            raise FormatError(f"sample {self.key}: phash must be 16 lower-case hex digits")
        if self.source not in SOURCES:
            raise FormatError(f"sample {self.key}: source must be one of {SOURCES}, got {self.source!r}")
        clash = set(self.extra) & set(FIELDS)
        if clash:
            raise FormatError(f"sample {self.key}: extra fields shadow fixed ones: {sorted(clash)}")

    @property
    def member_name(self) -> str:
        return f"{self.key}.{self.ext}"

    @property
    def min_side(self) -> int:
        return min(self.width, self.height)

    def to_record(self) -> dict[str, Any]:
        """The fixed columns only, as the index stores them."""
        return {name: getattr(self, name) for name in FIELDS}

    def to_json_bytes(self) -> bytes:
        # Sorted keys and fixed separators: the same sample always gives the same bytes.
        doc = {**self.extra, **self.to_record()}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> SampleMeta:
        if not isinstance(doc, dict):
            raise FormatError(f"sample metadata must be a JSON object, got {type(doc).__name__}")
        missing = [name for name in FIELDS if name not in doc and name not in _DEFAULTS]
        if missing:
            raise FormatError(f"sample {doc.get('key')!r}: missing fields {missing}")
        fixed = {name: doc[name] for name in FIELDS if name in doc}
        extra = {k: v for k, v in doc.items() if k not in FIELDS and k not in INDEX_ONLY}
        return cls(**fixed, extra=extra)

    @classmethod
    def from_json_bytes(cls, data: bytes) -> SampleMeta:
        return cls.from_dict(load_json(data, "sample metadata"))


# Fixed columns, in index order, with their Arrow types.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "key": pa.string(),
    "width": pa.int32(),
    "height": pa.int32(),
    "orientation": pa.int8(),
    "format": pa.string(),
    "ext": pa.string(),
    "mode": pa.string(),
    "nbytes": pa.int64(),
    "sha256": pa.string(),
    "phash": pa.string(),
    "source": pa.string(),
    "source_id": pa.string(),
    "url": pa.string(),
    "license": pa.string(),
    "license_url": pa.string(),
    "owner": pa.string(),
    "title": pa.string(),
    "date_taken": pa.string(),
    "dup_count": pa.int32(),
}
FIELDS: tuple[str, ...] = tuple(_ARROW_TYPES)
INDEX_ONLY = ("shard", "offset")

_OPTIONAL = {"url", "license", "license_url", "owner", "title", "date_taken"}
_DEFAULTS = _OPTIONAL | {"dup_count"}
_FIELD_TYPES = {
    name: (int if pa.types.is_integer(kind) else str) for name, kind in _ARROW_TYPES.items()
}
# What the index columns can hold: a value outside would fail only when written or compared.
_INT_RANGES = {
    name: (-(2 ** (kind.bit_width - 1)), 2 ** (kind.bit_width - 1) - 1)
    for name, kind in _ARROW_TYPES.items() if pa.types.is_integer(kind)
}
assert set(FIELDS) == {f.name for f in dataclasses.fields(SampleMeta)} - {"extra"}

INDEX_SCHEMA = pa.schema(
    [pa.field(name, kind, nullable=name in _OPTIONAL) for name, kind in _ARROW_TYPES.items()]
    + [pa.field("shard", pa.string(), nullable=False), pa.field("offset", pa.int64(), nullable=False)],
    metadata={b"format": FORMAT_NAME.encode(), b"version": str(FORMAT_VERSION).encode()},
)
