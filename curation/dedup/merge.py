"""Merges and the merge plan: what deduplication decides, on metadata only.

Global steps run on the staging indexes (a few hundred bytes a sample), never on pixels. A
dedup stage is a replaceable part: it takes the table of kept samples, each with its place
`(slice, row)`, and returns merges (this sample goes, into that one). `plan_merges` runs the
stages in turn over one table; the `MergePlan` it returns answers everything later steps ask
(what goes, who keeps what, the records and rejects the merges leave), and is the one place
where chains of merges (a into b, b into c) are followed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from ..items import REJECTS_SCHEMA

Place = tuple[int, int]  # (slice number, row in the slice's index): input order
REPEAT_REASON = "duplicate-url"


@dataclass(frozen=True)
class Merge:
    dropped: Place
    kept: Place | None  # None: dropped outright (close to an excluded dataset), merged into nothing
    reason: str  # the reject reason the dropped sample gets
    detail: str
    why: str = ""  # why the keeper won (`keeper.choose`); empty where nothing was chosen


class DedupStage(Protocol):
    name: str

    def describe(self) -> dict[str, Any]: ...

    def plan(self, kept: pa.Table) -> list[Merge]: ...


def places(table: pa.Table) -> list[Place]:
    return list(zip(table["slice"].to_pylist(), table["row"].to_pylist()))


class MergePlan:
    """The merges decided over `table` (kept samples with `slice` and `row`)."""

    def __init__(self, table: pa.Table | None, merges: list[Merge]):
        self.table = table
        self.merges = merges
        self.gone = {m.dropped for m in merges}
        self.row_of = {p: i for i, p in enumerate(places(table))} if table is not None else {}
        self._into = {m.dropped: m.kept for m in merges if m.kept is not None}

    def keeper(self, place: Place) -> Place:
        """Where a dropped sample's record ends: the end of its chain of merges."""
        while place in self._into:
            place = self._into[place]
        return place

    def absorbed(self) -> dict[Place, list[dict[str, Any]]]:
        """For each surviving sample, the samples merged into it."""
        if self.table is None:
            return {}
        records = self.table.select(["key", "source", "source_id", "url", "width", "height"]).to_pylist()
        found: dict[Place, list[dict[str, Any]]] = defaultdict(list)
        for m in self.merges:
            # the same item listed twice has nothing new to record; an excluded one went nowhere
            if m.reason == REPEAT_REASON or m.kept is None:
                continue
            found[self.keeper(m.kept)].append({**records[self.row_of[m.dropped]], "reason": m.reason})
        return found

    def summary(self) -> dict[str, int]:
        """Merges by reason, then clusters (samples that absorbed others), samples removed as
        duplicates, and pixels recovered: for each cluster, the keeper's pixels minus those of
        its earliest copy, which is what keep-the-first deduplication would have kept."""
        counts = {**dict(Counter(m.reason for m in self.merges)), "merged": len(self.merges)}
        if self.table is None:
            return counts
        dropped = [m.dropped for m in self.merges if m.kept is not None and m.reason != REPEAT_REASON]
        if not dropped:
            return {**counts, "clusters": 0, "removed": 0, "pixels_recovered": 0}
        pixels = dict(zip(places(self.table), (np.asarray(self.table["width"], np.int64)
                                               * np.asarray(self.table["height"], np.int64)).tolist()))
        members: dict[Place, list[Place]] = defaultdict(list)
        for place in dict.fromkeys(dropped):
            members[self.keeper(place)].append(place)
        recovered = sum(pixels[k] - pixels[min([k, *copies])] for k, copies in members.items())
        return {**counts, "clusters": len(members), "removed": len(set(dropped)),
                "pixels_recovered": int(recovered)}

    def records(self) -> pa.Table:
        """`work/dedup.parquet`: each dropped sample's key, its keeper's, the reason, and why
        the keeper won."""
        keys = self.table["key"].to_pylist() if self.table is not None else []
        key_of = {p: keys[i] for p, i in self.row_of.items()}
        return pa.table({"key": pa.array([key_of[m.dropped] for m in self.merges], pa.string()),
                         "kept_key": pa.array([None if m.kept is None else key_of[m.kept] for m in self.merges],
                                              pa.string()),
                         "reason": pa.array([m.reason for m in self.merges], pa.string()),
                         "kept_because": pa.array([m.why or None for m in self.merges], pa.string())})

    def rejects(self) -> pa.Table:
        """The dropped samples as rejects, with their reasons."""
        if not self.merges:
            return REJECTS_SCHEMA.empty_table()
        dropped = self.table.take([self.row_of[m.dropped] for m in self.merges])
        return pa.table({
            "source_id": dropped["source_id"], "reason": pa.array([m.reason for m in self.merges], pa.string()),
            "detail": pa.array([m.detail for m in self.merges], pa.string()), "key": dropped["key"],
            "source": dropped["source"], "position": pa.nulls(len(self.merges), pa.int64()),
        }, schema=REJECTS_SCHEMA)


def plan_merges(table: pa.Table | None, stages: Sequence[DedupStage], first: Iterable[Merge] = ()) -> MergePlan:
    """Run the stages in turn, each on the samples that earlier merges (`first`, then the
    stages before it) left."""
    merges = list(first)
    if table is not None:
        where = places(table)
        for stage in stages:
            gone = {m.dropped for m in merges}
            remaining = table.filter(pa.array([p not in gone for p in where], pa.bool_())) if gone else table
            merges += stage.plan(remaining)
    return MergePlan(table, merges)
