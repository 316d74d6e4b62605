"""Reading a dataset: streaming through its shards, or one sample by key in a single seek.

Both paths enforce one shard contract (SECURITY.md), through the same strict tar parser
(`shards.format.tario`): a sample is a plain ustar member `KEY.EXT` followed by `KEY.json`; the index's
offset points at the image data, the header 512 bytes before it names `KEY.EXT` with the
index's size, and the next header names `KEY.json` within the json bound. Streaming and seeking
therefore read the same bytes, and `verify` checks exactly what they read. The same code reads
local paths, brace patterns of shards, http(s) URLs and object stores, without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pyarrow as pa
from braceexpand import braceexpand

from shards.format.index import IndexFile, IndexFilter, read_index
from shards.format.limits import Limits
from shards.format.manifest import read_manifest
from shards.format.schema import FormatError, SampleMeta, check_ext, check_key
from shards.format.tario import BLOCK, Member, TarFormatError, padded, parse_header
from shards.format.tario import iter_members as tario_members
from shards.storage.location import DatasetError, Location, io_errors


def shard_errors() -> tuple[type[Exception], ...]:
    """What reading a shard may raise when the shard (not the caller) is at fault."""
    return (TarFormatError, *io_errors(), DatasetError, FormatError)

JSON_GUESS = 4096  # json bytes read along with the image: most members' json fits, saving a read


@dataclass(frozen=True)
class Sample:
    meta: SampleMeta
    data: bytes
    shard: str
    offset: int

    @property
    def key(self) -> str:
        return self.meta.key


def iter_members(fileobj, limits: Limits | None = None, max_bytes: int | None = None) -> Iterator[Member]:
    """Members of a tar stream, in order; raises TarFormatError at the first that breaks the
    plain-ustar contract or a bound (the rest of the shard is then lost)."""
    limits = limits or Limits.from_env()
    return tario_members(fileobj, limits.max_member_bytes, limits.max_json_bytes, max_bytes)


def group_samples(members: Iterable[Member], shard: str,
                  on_skip: Callable[[FormatError], Any] | None = None) -> Iterator[Sample]:
    """Pair consecutive `KEY.EXT` and `KEY.json` members into samples. A pair that breaks the
    contract raises FormatError, or is passed to `on_skip` (to be counted) and left out."""
    group: list[Member] = []
    for member in members:
        if group and member.key != group[0].key:
            yield from _checked(group, shard, on_skip)
            group = []
        group.append(member)
    if group:
        yield from _checked(group, shard, on_skip)


def _checked(group: list[Member], shard: str, on_skip) -> Iterator[Sample]:
    try:
        sample = make_sample(group, shard)
    except FormatError as exc:
        if on_skip is None:
            raise
        on_skip(exc)
        return
    yield sample


def make_sample(group: list[Member], shard: str) -> Sample:
    names = [m.name for m in group]
    if len(group) != 2 or group[0].ext == "json" or group[1].ext != "json":
        raise FormatError(f"{shard}: members {names}, expected KEY.EXT then KEY.json")
    image, js = group
    check_key(image.key)
    check_ext(image.ext)
    meta = SampleMeta.from_json_bytes(js.data)
    if meta.key != image.key or meta.ext != image.ext or meta.nbytes != len(image.data):
        raise FormatError(f"{shard}: member {image.name!r} ({len(image.data)} bytes) does not match "
                          f"its json ({meta.member_name}, {meta.nbytes} bytes)")
    return Sample(meta, image.data, shard, image.offset)


def expand_shards(pattern: str | Iterable[str]) -> list[str]:
    """`a/shard-{000000..000009}.tar` -> ten URLs; lists pass through expanded element-wise."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    return [url for p in patterns for url in braceexpand(p)]


def iter_shard_urls(
    urls: str | Iterable[str], on_error: Callable[[Exception], Any] | None = None,
    on_skip: Callable[[FormatError], Any] | None = None, limits: Limits | None = None,
) -> Iterator[Sample]:
    """Samples of raw shard URLs or brace patterns, without a dataset folder around them.

    By default a bad shard raises; pass `on_error` to record the problem and go on with the
    next shard, and `on_skip` to count bad samples and go on with the next sample.
    """
    for url in expand_shards(urls):
        loc = Location.parse(url, limits)
        try:
            with loc.open("") as f:
                yield from group_samples(iter_members(f, loc.limits), url, on_skip)
        except shard_errors() as exc:
            if on_error is None:
                raise
            on_error(exc)


class Dataset:
    """A finalised dataset, local or remote: manifest, index, samples."""

    def __init__(self, url: str, limits: Limits | None = None):
        self.loc = Location.parse(url, limits)
        self.limits = self.loc.limits
        self.manifest = read_manifest(self.loc)

    @property
    def url(self) -> str:
        return self.loc.url

    @cached_property
    def index_file(self) -> IndexFile:
        return read_index(self.loc, self.manifest["num_samples"])

    @property
    def index(self) -> pa.Table:
        return self.index_file.table

    @cached_property
    def _row_of_key(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(self.index["key"].to_pylist())}

    @cached_property
    def shard_sizes(self) -> dict[str, int]:
        """Each listed shard's size as the manifest states it: the end no read may pass."""
        return {s["name"]: s["nbytes"] for s in self.manifest["shards"]}

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
        """One sample by key, in one ranged read (two when its json is unusually long)."""
        row = self.row(key)
        return self.read_at(row["shard"], row["offset"], row["nbytes"], key, row["ext"])

    def _span(self, shard: str, offset: int, nbytes: int, key: str) -> int:
        """Check where the index says a sample lies; returns the shard's size."""
        size = self.shard_sizes.get(shard)
        if size is None:
            raise FormatError(f"sample {key!r}: the index names shard {str(shard)[:200]!r}, not in the manifest")
        if not (BLOCK <= offset <= size and offset % BLOCK == 0 and 0 <= nbytes <= self.limits.max_member_bytes
                and offset + padded(nbytes) + BLOCK <= size):
            raise FormatError(f"{shard}: sample {key!r} at offset {offset} with {nbytes} bytes does not "
                              f"lie inside the shard's {size} bytes, or breaks a bound")
        return size

    def read_at(self, shard: str, offset: int, nbytes: int, key: str, ext: str | None = None) -> Sample:
        """The sample whose image data the index places at `offset`, checked against the contract:
        one read for the image's header, its data, the json's header and (usually) the json."""
        size = self._span(shard, offset, nbytes, key)
        json_header_at = offset + padded(nbytes)
        json_guess_end = min(size, json_header_at + BLOCK + JSON_GUESS)
        head, data, tail = self.loc.read_pieces(
            shard, [(offset - BLOCK, offset), (offset, offset + nbytes), (json_header_at, json_guess_end)])
        if len(head) != BLOCK or len(data) != nbytes or len(tail) < BLOCK:
            raise FormatError(f"{shard}: sample {key!r} runs past the end of the shard")
        try:
            image = parse_header(head)
            js = parse_header(tail[:BLOCK])
        except TarFormatError as exc:
            raise FormatError(f"{shard}: sample {key!r}: {exc}") from None
        expected = f"{key}.{ext}" if ext is not None else image.name
        if image.name.split(".", 1)[0] != key or image.name != expected or image.size != nbytes:
            raise FormatError(f"{shard}: the header at byte {offset - BLOCK} names {image.name!r} of "
                              f"{image.size} bytes; the index says {key}.{ext} of {nbytes}")
        if js.name != f"{key}.json":
            raise FormatError(f"{shard}: expected {key}.json at byte {json_header_at}, found {js.name!r}")
        start = json_header_at + BLOCK
        if js.size > self.limits.max_json_bytes or start + js.size > size:
            raise FormatError(f"{shard}: {key}.json claims {js.size} bytes, over the bound or past the shard")
        raw = tail[BLOCK : BLOCK + js.size]
        if len(raw) < js.size:  # a json longer than the guess
            raw = self.loc.read_bytes(shard, start, start + js.size)
        if len(raw) != js.size:
            raise FormatError(f"{shard}: {key}.json runs past the end of the shard")
        meta = SampleMeta.from_json_bytes(raw)
        if meta.member_name != image.name or meta.nbytes != nbytes:
            raise FormatError(f"{shard}: {key}.json describes {meta.member_name} of {meta.nbytes} bytes, "
                              f"the member is {image.name} of {nbytes}")
        return Sample(meta, data, shard, offset)

    def iter_samples(
        self,
        shards: Iterable[str] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
        on_skip: Callable[[FormatError], Any] | None = None,
    ) -> Iterator[Sample]:
        """Stream samples in shard order, reading each shard front to back.

        A shard that breaks the contract raises, or goes to `on_error` and the rest of it is
        skipped; a sample that breaks it raises, or goes to `on_skip` (the loader counts it).
        """
        for name in self.shard_names if shards is None else shards:
            try:
                if name not in self.shard_sizes:
                    raise DatasetError(f"{str(name)[:200]!r} is not a shard of {self.url}")
                with self.loc.open(name) as f:
                    members = iter_members(f, self.limits, self.shard_sizes[name])
                    yield from group_samples(members, name, on_skip)
            except shard_errors() as exc:
                if on_error is None:
                    raise
                on_error(exc)

    def select(self, where: IndexFilter) -> pa.Table:
        return where.apply(self.index)

    def iter_selected(self, rows: pa.Table) -> Iterator[Sample]:
        """Samples of some index rows, by seeking; rows are visited in shard and offset order."""
        ordered = rows.sort_by([("shard", "ascending"), ("offset", "ascending")])
        for row in ordered.select(["key", "shard", "offset", "nbytes", "ext"]).to_pylist():
            yield self.read_at(row["shard"], row["offset"], row["nbytes"], row["key"], row["ext"])
