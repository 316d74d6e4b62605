"""Repeated keys (the same URL or file listed twice), then exact duplicates by sha256; the
copy that stays is chosen by the keeper rule (`keeper.py`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from .keeper import because, choose, records
from .merge import Merge, Place, places


@dataclass(frozen=True)
class ExactDedup:
    name: str = "exact-sha256"

    def describe(self) -> dict[str, Any]:
        return {"stage": self.name, "keep": "best provenance (licence, attribution, source), then input order"}

    def plan(self, kept: pa.Table) -> list[Merge]:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, sha in enumerate(kept["sha256"].to_pylist()):
            groups[sha].append(i)
        where = places(kept)
        merges = []
        for rows in groups.values():
            if len(rows) == 1:
                continue
            found = records(kept, rows)
            best = choose(found)  # rows are in input order: arrival breaks ties
            for j, i in enumerate(rows):
                if j != best:
                    merges.append(Merge(where[i], where[rows[best]], "duplicate",
                                        f"same bytes as {found[best]['key']}", because(found, best, j)))
        return merges


def repeated_keys(kept: pa.Table, rejects: pa.Table) -> tuple[list[Merge], dict[int, str]]:
    """The same key more than once across slices (a URL listed twice, far apart): one
    occurrence stays, preferring a kept one (an earlier try may have failed transiently), and
    every other becomes a `duplicate-url` reject. Returns merges for the kept occurrences that
    go, and new reasons for rejected occurrences (by reject row)."""
    first_kept: dict[str, Place] = {}
    merges = []
    for key, place in zip(kept["key"].to_pylist(), places(kept)):
        if key in first_kept:
            merges.append(Merge(place, first_kept[key], "duplicate-url", "an earlier row has the same URL"))
        else:
            first_kept[key] = place
    relabel: dict[int, str] = {}
    first_reject: set[str] = set()
    order = sorted(range(rejects.num_rows), key=rejects["position"].to_pylist().__getitem__)
    keys, reasons = rejects["key"].to_pylist(), rejects["reason"].to_pylist()
    for i in order:
        key = keys[i]
        if reasons[i] == "duplicate-url":
            continue
        if key in first_kept or key in first_reject:
            relabel[i] = "duplicate-url"
        else:
            first_reject.add(key)
    return merges, relabel
