"""Reading a dataset: streaming through its shards, or one sample by key in a single seek.

Streaming uses the standard `tarfile` module in stream mode over fsspec files, so the same code
reads local paths, brace patterns of shards, http(s) URLs and object stores, without torch
(WebDataset itself imports torch, which `shards` must not).
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pyarrow as pa
from braceexpand import braceexpand

from .index import IndexFilter, read_index
from .location import IO_ERRORS, DatasetError, Location
from .manifest import read_manifest
from .schema import FormatError, SampleMeta
from .tario import BLOCK, padded, read_header

ShardError = (tarfile.TarError, EOFError, *IO_ERRORS, DatasetError)


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


@dataclass(frozen=True)
class Sample:
    meta: SampleMeta
    data: bytes
    shard: str
    offset: int

    @property
    def key(self) -> str:
        return self.meta.key


def iter_members(fileobj) -> Iterator[Member]:
    """Regular-file members of a tar stream, in order. Raises tarfile.TarError when truncated."""
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:
        for info in tar:
            if not info.isfile():
                raise tarfile.TarError(f"unexpected non-file member {info.name!r}")
            data = tar.extractfile(info).read()
            if len(data) != info.size:
                raise tarfile.ReadError(f"member {info.name!r} is truncated")
            yield Member(info.name, info.offset_data, data)


def group_samples(members: Iterable[Member], shard: str) -> Iterator[Sample]:
    """Pair consecutive `KEY.EXT` and `KEY.json` members into samples (WebDataset grouping)."""
    group: list[Member] = []
    for member in members:
        if group and member.key != group[0].key:
            yield _make_sample(group, shard)
            group = []
        group.append(member)
    if group:
        yield _make_sample(group, shard)


def _make_sample(group: list[Member], shard: str) -> Sample:
    key = group[0].key
    by_ext = {m.ext: m for m in group}
    if len(by_ext) != len(group) or "json" not in by_ext or len(group) != 2:
        names = [m.name for m in group]
        raise FormatError(f"{shard}: key {key!r} has members {names}, expected KEY.EXT and KEY.json")
    meta = SampleMeta.from_json_bytes(by_ext.pop("json").data)
    image = next(iter(by_ext.values()))
    if meta.key != key or meta.ext != image.ext:
        raise FormatError(f"{shard}: member {image.name!r} does not match its json ({meta.member_name})")
    return Sample(meta, image.data, shard, image.offset)


def expand_shards(pattern: str | Iterable[str]) -> list[str]:
    """`a/shard-{000000..000009}.tar` -> ten URLs; lists pass through expanded element-wise."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    return [url for p in patterns for url in braceexpand(p)]


def iter_shard_urls(
    urls: str | Iterable[str], on_error: Callable[[Exception], Any] | None = None
) -> Iterator[Sample]:
    """Samples of raw shard URLs or brace patterns, without a dataset folder around them.

    By default a bad shard raises; pass `on_error` to record the problem and go on with the
    next shard.
    """
    for url in expand_shards(urls):
        loc = Location.parse(url)
        try:
            with loc.open("") as f:
                yield from group_samples(iter_members(f), url)
        except (*ShardError, FormatError) as exc:
            if on_error is None:
                raise
            on_error(exc)


class Dataset:
    """A finalised dataset, local or remote: manifest, index, samples."""

    def __init__(self, url: str):
        self.loc = Location.parse(url)
        self.manifest = read_manifest(self.loc)

    @property
    def url(self) -> str:
        return self.loc.url

    @cached_property
    def index(self) -> pa.Table:
        return read_index(self.loc)

    @cached_property
    def _row_of_key(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(self.index["key"].to_pylist())}

    @property
    def shard_names(self) -> list[str]:
        return [s["name"] for s in self.manifest["shards"]]

    def __len__(self) -> int:
        return self.manifest["num_samples"]

    def row(self, key: str) -> dict[str, Any]:
        i = self._row_of_key.get(key)
        if i is None:
            raise DatasetError(f"no sample with key {key!r} in {self.url}")
        return self.index.slice(i, 1).to_pylist()[0]

    def get(self, key: str) -> Sample:
        """One sample by key: a ranged read for the image and its header, one for the json."""
        row = self.row(key)
        return self.read_at(row["shard"], row["offset"], row["nbytes"], key)

    def read_at(self, shard: str, offset: int, nbytes: int, key: str) -> Sample:
        json_header_at = offset + padded(nbytes)
        blob = self.loc.read_bytes(shard, offset, json_header_at + BLOCK)
        if len(blob) != padded(nbytes) + BLOCK:
            raise FormatError(f"{shard}: sample {key!r} runs past the end of the shard")
        try:
            header = read_header(blob[-BLOCK:])
        except tarfile.TarError as exc:
            raise FormatError(f"{shard}: no json member after {key!r} at byte {json_header_at}: {exc}") from None
        if header.name != f"{key}.json":
            raise FormatError(f"{shard}: expected {key}.json at byte {json_header_at}, found {header.name!r}")
        start = json_header_at + BLOCK
        meta = SampleMeta.from_json_bytes(self.loc.read_bytes(shard, start, start + header.size))
        return Sample(meta, blob[:nbytes], shard, offset)

    def iter_samples(
        self,
        shards: Iterable[str] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
    ) -> Iterator[Sample]:
        """Stream samples in shard order, reading each shard front to back."""
        for name in self.shard_names if shards is None else shards:
            try:
                with self.loc.open(name) as f:
                    yield from group_samples(iter_members(f), name)
            except (*ShardError, FormatError) as exc:
                if on_error is None:
                    raise
                on_error(exc)

    def select(self, where: IndexFilter) -> pa.Table:
        return where.apply(self.index)

    def iter_selected(self, rows: pa.Table) -> Iterator[Sample]:
        """Samples of some index rows, by seeking; rows are visited in shard and offset order."""
        ordered = rows.sort_by([("shard", "ascending"), ("offset", "ascending")])
        for row in ordered.select(["key", "shard", "offset", "nbytes"]).to_pylist():
            yield self.read_at(row["shard"], row["offset"], row["nbytes"], row["key"])
