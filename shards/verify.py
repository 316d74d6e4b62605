"""Checking that a dataset's tars, index and manifest tell the same story.

`verify_dataset` streams every shard once, front to back, and compares what it finds with the
index and the manifest; `deep` also decodes every image and recomputes its hashes with the same
probe curation used. Findings are data, a list of `Problem`s, and a damaged shard is one more
finding: only a dataset that cannot be opened at all raises `DatasetError`.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from .location import DatasetError, Location
from .manifest import SHARD_DIR
from .probe import probe_image, sha256_hex
from .reader import Dataset, Member, ShardError, iter_members
from .schema import FIELDS, FormatError, SampleMeta, check_ext, check_key
from .tario import BLOCK, END_OF_ARCHIVE, padded, read_header

MAX_LISTED = 5  # keys named in one problem that stands for many rows
DEEP_FIELDS = ("width", "height", "phash")  # what the probe recomputes, besides sha256


@dataclass(frozen=True)
class Problem:
    shard: str | None  # relative to the dataset; None for the dataset as a whole
    key: str | None
    message: str

    def __str__(self) -> str:
        where = " ".join(part for part in (self.shard, self.key and f"key {self.key}") if part)
        return f"{where}: {self.message}" if where else self.message


@dataclass
class VerifyReport:
    dataset: str
    deep: bool
    shards_checked: int = 0
    samples_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "deep": self.deep,
            "ok": self.ok,
            "shards_checked": self.shards_checked,
            "samples_checked": self.samples_checked,
            "num_problems": len(self.problems),
            "problems": [asdict(p) for p in self.problems],
        }


def member_name_problem(member: Member) -> str | None:
    """Why a member's name cannot belong to a sample, if it cannot."""
    if "." not in member.name:
        return f"member {member.name!r} has no extension"
    if "." in member.ext:
        # WebDataset splits at the first dot, so such a sample would fall apart on reading.
        return (
            f"member {member.name!r} has a dot in its key: "
            f"readers would split it into {member.key!r} and {member.ext!r}"
        )
    try:
        check_key(member.key)
        check_ext(member.ext)
    except FormatError as exc:
        return f"member {member.name!r}: {exc}"
    return None


def group_problem(group: list[Member]) -> str | None:
    """Why consecutive members sharing a key are not one `KEY.EXT` plus one `KEY.json`."""
    names = ", ".join(m.name for m in group)
    jsons = sum(m.ext == "json" for m in group)
    if jsons == 0:
        return f"stray member{'s' if len(group) > 1 else ''} {names}: no {group[0].key}.json"
    if len(group) == 1:
        return f"{group[0].name} has no image member"
    if len(group) > 2 or jsons > 1:
        return f"extra members: {names} (expected one KEY.EXT and one KEY.json)"
    return None


def end_problem(tail: bytes, end: int) -> str | None:
    """Why the bytes after the last readable member are not a proper end-of-archive."""
    if tail == END_OF_ARCHIVE:
        return None
    first = tail[:BLOCK]
    if len(first) == BLOCK and any(first):
        # tarfile's stream mode stops quietly at a bad header after the first one.
        try:
            read_header(first)
            reason = "unreadable"
        except tarfile.HeaderError as exc:
            reason = str(exc)
        return f"corrupt tar header at byte {end} ({reason}): the members from there on cannot be read"
    if len(tail) < len(END_OF_ARCHIVE):
        return f"truncated: the file ends at byte {end + len(tail)} without an end-of-archive"
    return f"damaged end-of-archive at byte {end}"


def read_members(loc: Location, shard: str, errors: list[Exception]) -> Iterator[Member]:
    """A shard's members up to the first that cannot be read; that failure goes to `errors`."""
    try:
        with loc.open(shard) as f:
            yield from iter_members(f)
    except ShardError as exc:  # tar damage, or the storage failing under us
        errors.append(exc)


def missing_rows_problem(shard: str, keys: list[str], why: str) -> Problem:
    # One problem per shard, not per row: a lost shard would otherwise bury everything else.
    if len(keys) == 1:
        return Problem(shard, keys[0], why)
    listed = ", ".join(keys[:MAX_LISTED])
    if len(keys) > MAX_LISTED:
        listed += f" and {len(keys) - MAX_LISTED} more"
    return Problem(shard, None, f"{why}: {len(keys)} index rows ({listed})")


def rows_by_shard(index: pa.Table) -> tuple[dict[str, list[int]], dict[str, str], list[Problem]]:
    """Row numbers per shard, the shard of every key, and the keys the index holds twice."""
    by_shard: dict[str, list[int]] = {}
    shard_of: dict[str, str] = {}
    names: dict[str, str] = {}
    problems = []
    keys, shards = index["key"].to_pylist(), index["shard"].to_pylist()
    for i, (key, shard) in enumerate(zip(keys, shards, strict=True)):
        shard = names.setdefault(shard, shard)  # one string per shard, not one per row
        if key in shard_of:
            where = f"{shard_of[key]}, {shard}"
            problems.append(Problem(None, key, f"index has more than one row for this key ({where})"))
        shard_of[key] = shard
        by_shard.setdefault(shard, []).append(i)
    return by_shard, shard_of, problems


class Verifier:
    """One pass over a dataset; holds one shard's index rows and one sample's bytes at a time."""

    def __init__(self, loc: Location, manifest: dict[str, Any], index: pa.Table, deep: bool,
                 progress: Callable[[int], None] | None):
        self.loc = loc
        self.manifest = manifest
        self.index = index
        self.deep = deep
        self.progress = progress
        self.report = VerifyReport(loc.url, deep)
        self.rows_of_shard, self.shard_of, dupes = rows_by_shard(index)
        self.report.problems.extend(dupes)
        self.seen: dict[str, str] = {}  # key -> shard where it was first found

    def problem(self, shard: str | None, key: str | None, message: str) -> None:
        self.report.problems.append(Problem(shard, key, message))

    def run(self) -> VerifyReport:
        entries: dict[str, dict[str, Any]] = {}
        for entry in self.manifest["shards"]:
            if entry["name"] in entries:
                self.problem(entry["name"], None, "listed more than once in the manifest")
            entries.setdefault(entry["name"], entry)
        totals = [self.check_shard(name, entry) for name, entry in entries.items()]
        for shard, rows in self.rows_of_shard.items():  # what is left names no listed shard
            keys = self.index["key"].take(rows).to_pylist()
            why = "index rows name a shard not in the manifest"
            self.report.problems.append(missing_rows_problem(shard, keys, why))
        self.check_totals(totals)
        self.check_unlisted_files(entries)
        return self.report

    def check_shard(self, name: str, entry: dict[str, Any]) -> tuple[int, int] | None:
        """Samples and bytes of one shard, or None when it could not be read through."""
        taken = self.index.take(pa.array(self.rows_of_shard.pop(name, []), pa.int64()))
        rows = {row["key"]: row for row in taken.to_pylist()}
        size = self.loc.size(name)  # None for a missing file, or a server that does not say
        if not self.loc.exists(name):
            self.problem(name, None, "listed in the manifest but missing")
            result = None
        else:
            result = self.read_shard(name, rows, size)
        if rows:
            self.report.problems.append(missing_rows_problem(name, sorted(rows), "missing from shards"))
        nbytes, num_samples = entry.get("nbytes"), entry.get("num_samples")
        if size is not None and size != nbytes:
            self.problem(name, None, f"manifest says {nbytes} bytes, the file has {size}")
        if result is not None and result != num_samples:
            self.problem(name, None, f"manifest says {num_samples} samples, the shard holds {result}")
        return None if result is None or size is None else (result, size)

    def read_shard(self, name: str, rows: dict[str, dict[str, Any]], size: int | None) -> int | None:
        self.report.shards_checked += 1
        count = end = 0
        group: list[Member] = []
        errors: list[Exception] = []
        for member in read_members(self.loc, name, errors):
            if group and member.key != group[0].key:
                count += self.check_group(name, group, rows)
                group = []
            group.append(member)
            end = member.offset + padded(len(member.data))
        for error in errors:
            self.problem(name, None, f"unreadable tar after byte {end}: {error}")
        complete = not errors and self.check_end(name, end, size)
        # Members read before damage are still checked, but a last group the damage cut short
        # is explained by it, and is no stray of its own.
        if group and (complete or group_problem(group) is None):
            count += self.check_group(name, group, rows)
        return count if complete else None

    def check_end(self, name: str, end: int, size: int | None) -> bool:
        stop = end + len(END_OF_ARCHIVE)
        if size is not None:
            stop = min(stop, size)  # over http, a range past the end is an error, not a short read
        try:
            tail = self.loc.read_bytes(name, end, stop) if stop > end else b""
        except DatasetError as exc:
            why = f"cannot read the end of the shard: {exc}"
        else:
            why = end_problem(tail, end)
        if why:
            self.problem(name, None, why)
        return why is None

    def check_group(self, shard: str, group: list[Member], rows: dict[str, dict[str, Any]]) -> int:
        """Check one WebDataset group; returns 1 when it is a sample, 0 for strays."""
        bad_names = [why for why in map(member_name_problem, group) if why]
        for why in bad_names:
            self.problem(shard, None, why)
        structure = None if bad_names else group_problem(group)
        if structure:
            self.problem(shard, group[0].key, structure)
        if bad_names or structure:
            return 0
        key = group[0].key
        row = rows.pop(key, None)  # taken even by a repeat, which is no "missing from shards"
        if key in self.seen:
            where = "earlier in this shard" if self.seen[key] == shard else f"in {self.seen[key]}"
            self.problem(shard, key, f"key appears twice in the dataset (first {where})")
        else:
            self.seen[key] = shard
            image, js = sorted(group, key=lambda m: m.ext == "json")
            self.check_sample(shard, image, js, row)
        self.report.samples_checked += 1
        if self.progress is not None:
            self.progress(1)
        return 1

    def check_sample(self, shard: str, image: Member, js: Member, row: dict[str, Any] | None) -> None:
        key = image.key
        if row is None:
            elsewhere = self.shard_of.get(key)
            why = "missing index row" if elsewhere is None else f"the index places it in {elsewhere}"
            self.problem(shard, key, why)
        else:
            self.check_position(shard, key, row, image)
        try:
            meta = SampleMeta.from_json_bytes(js.data)
        except FormatError as exc:
            self.problem(shard, key, f"invalid {js.name}: {exc}")
            return
        if meta.member_name != image.name:
            self.problem(shard, key, f"json describes {meta.member_name}, but the member is {image.name}")
        if meta.nbytes != len(image.data):
            self.problem(shard, key, f"json nbytes {meta.nbytes}, the member holds {len(image.data)} bytes")
        if row is not None:
            self.compare(shard, key, "index", {f: row[f] for f in FIELDS}, "json", meta.to_record())
        if self.deep:
            self.check_image(shard, key, image.data, meta)

    def check_position(self, shard: str, key: str, row: dict[str, Any], image: Member) -> None:
        offset, nbytes = row["offset"], row["nbytes"]
        if offset != image.offset:
            self.problem(shard, key, f"index offset {offset}, the image data starts at byte {image.offset}")
        if nbytes != len(image.data):
            self.problem(shard, key, f"index nbytes {nbytes}, the member holds {len(image.data)} bytes")

    def compare(
        self, shard: str, key: str, left: str, a: dict[str, Any], right: str, b: dict[str, Any]
    ) -> None:
        """One problem naming every field on which two accounts of a sample differ."""
        diffs = [f"{f} ({left} {a[f]!r}, {right} {b[f]!r})" for f in a if a[f] != b[f]]
        if diffs:
            self.problem(shard, key, f"{left} and {right} disagree on " + ", ".join(diffs))

    def check_image(self, shard: str, key: str, data: bytes, meta: SampleMeta) -> None:
        digest = sha256_hex(data)
        if digest != meta.sha256:
            why = f"sha256 mismatch: json says {meta.sha256}, the stored bytes have {digest}"
            self.problem(shard, key, why)
        try:
            info = probe_image(data)
        except Exception as exc:  # whatever stops decoding is a finding about this image
            self.problem(shard, key, f"image does not decode: {exc}")
            return
        self.compare(shard, key, "json", {f: getattr(meta, f) for f in DEEP_FIELDS},
                     "image", {f: getattr(info, f) for f in DEEP_FIELDS})

    def check_totals(self, totals: list[tuple[int, int] | None]) -> None:
        listed, said = len(self.manifest["shards"]), self.manifest["num_shards"]
        if said != listed:
            self.problem(None, None, f"manifest num_shards {said}, but it lists {listed} shards")
        if None in totals:
            return  # a shard not read through has its own problem; the sums would only echo it
        real_totals = {"num_samples": sum(t[0] for t in totals), "total_bytes": sum(t[1] for t in totals)}
        for name, real in real_totals.items():
            if self.manifest[name] != real:
                self.problem(None, None, f"manifest {name} {self.manifest[name]}, but the shards hold {real}")

    def check_unlisted_files(self, entries: dict[str, dict[str, Any]]) -> None:
        # Only a local folder can be listed reliably; an http(s) prefix cannot be listed at all.
        if not self.loc.is_local or not self.loc.exists(SHARD_DIR):
            return
        for path in sorted(self.loc.fs.ls(self.loc.path(SHARD_DIR), detail=False)):
            name = posixpath.relpath(path, self.loc.root)
            if name not in entries:
                self.problem(name, None, "shard file not listed in the manifest")


def verify_dataset(
    url: str, deep: bool = False, progress: Callable[[int], None] | None = None
) -> VerifyReport:
    """Check a dataset; raises DatasetError only when it cannot be opened as a dataset at all."""
    dataset = Dataset(url)
    return Verifier(dataset.loc, dataset.manifest, dataset.index, deep, progress).run()
