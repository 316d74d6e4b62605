"""Checking that a dataset's tars, index and manifest tell the same story.

`verify_dataset` streams every shard once, front to back, through the same strict member
reader the loader and `show` use (`shards.format.tario`, SECURITY.md), and compares what it finds with
the index and the manifest; `deep` also decodes every image and recomputes what curation
recorded of it (hashes, size, orientation, mode, format) with the same probe. Every byte of
every shard is counted and hashed as it streams, so sizes are checked whatever a server says,
and the dataset's root hash is recomputed from what was read: `expect` pins it. Findings are
data, a list of `Problem`s; only a dataset that cannot be opened at all raises `DatasetError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from shards.format.limits import Limits
from shards.format.manifest import ROOT_FIELD, SHARD_DIR, root_hash
from shards.format.reader import Dataset, iter_members, shard_errors
from shards.format.schema import FIELDS, FormatError, SampleMeta, check_ext, check_key
from shards.format.tario import Member, TruncatedError, padded
from shards.intake.probe import probe_image, sha256_hex
from shards.storage.location import DatasetError, Location

LOCAL_SLACK = 2**30  # bytes of a local shard read beyond its manifest size, to report what is there
MAX_LISTED = 5  # keys named in one problem that stands for many rows
# What the probe recomputes besides sha256: everything training reads from the metadata.
DEEP_FIELDS = ("width", "height", "orientation", "format", "ext", "mode", "phash")
LEGACY_NOTE = ("{url} records no root hash (it was written before datasets were pinned); "
               "pin the root computed here with `anyres-shards verify {url} --expect {root}`, "
               "or record it in a new copy with `anyres-shards subset {url} NEW_FOLDER`")


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
    root_hash: str | None = None  # computed from the bytes read; None when a shard was unreadable
    notes: list[str] = field(default_factory=list)  # not problems: what the user may want to do

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
            "root_hash": self.root_hash,
            "notes": self.notes,
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


class HashingReader:
    """Counts and hashes every byte read from a shard, and reads no more than `limit` in all."""

    def __init__(self, fileobj, limit: int):
        self.fileobj = fileobj
        self.limit = limit
        self.count = 0
        self.sha256 = hashlib.sha256()

    def read(self, n: int) -> bytes:
        data = self.fileobj.read(max(0, min(n, self.limit - self.count)))
        self.count += len(data)
        self.sha256.update(data)
        return data

    def drain(self) -> bool:
        """Reads the rest, up to the limit; says whether any of it was not zero."""
        nonzero = False
        while chunk := self.read(1 << 22):
            nonzero = nonzero or any(chunk)
        return nonzero


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

    def __init__(self, dataset: Dataset, deep: bool, progress: Callable[[int], None] | None,
                 expect: str | None = None):
        self.dataset = dataset
        self.loc: Location = dataset.loc
        self.limits: Limits = dataset.limits
        self.manifest = dataset.manifest
        self.index = dataset.index
        self.deep = deep
        self.progress = progress
        self.expect = expect
        self.report = VerifyReport(self.loc.url, deep)
        self.rows_of_shard, self.shard_of, dupes = rows_by_shard(self.index)
        self.report.problems.extend(dupes)
        self.seen: dict[str, str] = {}  # key -> shard where it was first found
        self.digests: dict[str, tuple[int, str] | None] = {}  # shard -> (bytes, sha256) as read

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
        self.check_root()
        return self.report

    def check_shard(self, name: str, entry: dict[str, Any]) -> tuple[int, int] | None:
        """Samples and bytes of one shard, or None when it could not be read through."""
        taken = self.index.take(pa.array(self.rows_of_shard.pop(name, []), pa.int64()))
        rows = {row["key"]: row for row in taken.to_pylist()}
        nbytes, num_samples = entry["nbytes"], entry["num_samples"]
        self.digests[name] = None
        result = size = None
        try:
            exists = self.loc.exists(name)
        except DatasetError as exc:  # e.g. a server redirecting to another host
            self.problem(name, None, f"cannot read the shard: {exc}")
        else:
            if not exists:
                self.problem(name, None, "listed in the manifest but missing")
            else:
                result, size = self.read_shard(name, rows, nbytes)
        if rows:
            self.report.problems.append(missing_rows_problem(name, sorted(rows), "missing from shards"))
        if size is not None and size != nbytes:
            shown = size if size <= nbytes else (self.loc.size(name) or f"more than {nbytes}")
            self.problem(name, None, f"manifest says {nbytes} bytes, the file has {shown}")
        if result is not None and result != num_samples:
            self.problem(name, None, f"manifest says {num_samples} samples, the shard holds {result}")
        return None if result is None or size is None else (result, size)

    def read_shard(self, name: str, rows: dict[str, dict[str, Any]], nbytes: int) -> tuple[int | None, int | None]:
        """(samples, bytes) of one shard; samples is None when the tar could not be read through."""
        self.report.shards_checked += 1
        count = end = 0
        group: list[Member] = []
        error: Exception | None = None
        # Read as far as the manifest says, and one byte more to tell a longer file; a local
        # file's real size is known, so what a longer one holds is read and reported too, up to
        # a slack (a sparse file can claim terabytes).
        local_size = self.loc.size(name) if self.loc.kind == "local" else None
        limit = max(nbytes, min(local_size or 0, nbytes + LOCAL_SLACK))
        try:
            with self.loc.open(name) as raw:
                reader = HashingReader(raw, limit + 1)
                try:
                    for member in iter_members(reader, self.limits, limit):
                        if group and member.key != group[0].key:
                            count += self.check_group(name, group, rows)
                            group = []
                        group.append(member)
                        end = member.offset + padded(len(member.data))
                except shard_errors() as exc:
                    error = exc
                trailing = reader.drain()
        except shard_errors() as exc:  # the storage failing under us
            self.problem(name, None, f"cannot read the shard: {exc}")
            return None, None
        if error is not None and reader.count > limit:
            self.problem(name, None, f"the shard runs past the manifest's {nbytes} bytes; not read further")
        elif isinstance(error, TruncatedError):
            self.problem(name, None, str(error))
        elif error is not None:
            self.problem(name, None, f"unreadable tar after byte {end}: {error}")
        elif trailing:
            self.problem(name, None, "data after the end-of-archive, which no reader sees")
        # Members read before damage are still checked, but a last group the damage cut short
        # is explained by it, and is no stray of its own.
        if group and (error is None or group_problem(group) is None):
            count += self.check_group(name, group, rows)
        self.digests[name] = (reader.count, reader.sha256.hexdigest())
        return (count if error is None else None), reader.count

    def check_group(self, shard: str, group: list[Member], rows: dict[str, dict[str, Any]]) -> int:
        """Check one WebDataset group; returns 1 when it is a sample, 0 for strays."""
        bad_names = [why for why in map(member_name_problem, group) if why]
        for why in bad_names:
            self.problem(shard, None, why)
        structure = None if bad_names else group_problem(group)
        if structure is None and not bad_names and group[0].ext == "json":
            structure = f"{group[1].name} comes after {group[0].name}: the image member must come first"
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
            image, js = group
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
        # With these equal, a read by offset (show, grid, subset) meets the very headers and
        # bytes checked here: both go through the same strict header parser.
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
            info = probe_image(data, self.limits.max_pixels, self.limits.max_jpeg_scans)
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
        for name in self.loc.list_local(SHARD_DIR):
            if name not in entries:
                self.problem(name, None, "shard file not listed in the manifest")

    def check_root(self) -> None:
        """Each shard's sha256 and the root hash, recomputed from the bytes read."""
        shards = self.manifest["shards"]
        recorded = self.manifest.get(ROOT_FIELD)
        for entry in shards:
            got = self.digests.get(entry["name"])
            if got is not None and "sha256" in entry and entry["sha256"] != got[1]:
                self.problem(entry["name"], None, f"manifest sha256 {entry['sha256']}, the file's is {got[1]}")
            elif recorded is not None and "sha256" not in entry:
                self.problem(entry["name"], None, "the manifest records a root hash but no sha256 for this shard")
        if all(self.digests.get(e["name"]) is not None for e in shards):
            index = self.dataset.index_file
            read = [{"name": e["name"], "nbytes": self.digests[e["name"]][0], "sha256": self.digests[e["name"]][1]}
                    for e in shards]
            self.report.root_hash = root_hash(index.sha256, index.nbytes, read)
        computed = self.report.root_hash
        if recorded is not None and computed is not None and recorded != computed:
            self.problem(None, None, f"manifest root hash {recorded}, but the index and shards give {computed}")
        if self.expect is not None:
            if computed is None:
                self.problem(None, None, "cannot check --expect: a shard could not be read through")
            elif computed != self.expect:
                self.problem(None, None, f"root hash {computed} is not the expected {self.expect}")
        if recorded is None and computed is not None:
            self.report.notes.append(LEGACY_NOTE.format(url=self.loc.url, root=computed))


def verify_dataset(
    url: str, deep: bool = False, progress: Callable[[int], None] | None = None,
    expect: str | None = None, limits: Limits | None = None,
) -> VerifyReport:
    """Check a dataset; raises DatasetError only when it cannot be opened as a dataset at all.
    With `expect`, also check that its root hash, recomputed from every byte, is that one."""
    return Verifier(Dataset(url, limits), deep, progress, expect).run()
