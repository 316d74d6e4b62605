"""`--exclude`: drop every sample that is a near copy of a sample of another dataset (e.g. the
test set), so that nothing leaks between train and test. The same matches as deduplication:
pHash within the radius, and with the aligned stage, crops and overlays either way round (a
training image that is a crop of a test image, or contains one). Reads only the other
datasets' index and stored signatures; a dataset without signatures (made before they were
stored, or by `anyres-shards pack`) is matched by pHash only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from shards import Dataset

from .. import signature_files
from .crops import AlignedDedup, Signed, candidates, relation, verify
from .hamming import across, parse_hex
from .merge import Merge, places
from .near import DEFAULT_RADIUS

EXCLUDED_REASON = "excluded"


@dataclass(frozen=True)
class ExcludeNear:
    datasets: tuple[str, ...]
    radius: int = DEFAULT_RADIUS
    aligned: AlignedDedup | None = None  # also crops and overlays, by the aligned stage's settings
    name: str = "exclude"

    def __post_init__(self) -> None:
        for url in self.datasets:  # a wrong path fails now, not after hours of fetching
            Dataset(url)
            signature_files.check(url)

    def describe(self) -> dict[str, Any]:
        doc = {"stage": self.name, "datasets": list(self.datasets), "radius": self.radius}
        if self.aligned is not None:
            doc["aligned"] = {"radius": self.aligned.radius, "threshold": self.aligned.threshold}
        return doc

    def base(self) -> tuple[pa.Table, list[str]]:
        """Every sample of the other datasets: key, pHash and signature; and its dataset."""
        tables, names = [], []
        for url in self.datasets:
            index = Dataset(url).index.select(["key", "phash", "width", "height"])
            tables.append(signature_files.attach(index, signature_files.of_dataset(url)))
            names += [url] * index.num_rows
        return pa.concat_tables(tables), names

    def plan(self, kept: pa.Table) -> list[Merge]:
        base, names = self.base()
        if kept.num_rows == 0 or base.num_rows == 0:
            return []
        found: dict[int, str] = {}
        keys = base["key"].to_pylist()
        # distinct values only: a test set's many copies of one hash would multiply the pairs
        values, first = np.unique(parse_hex(base["phash"].to_pylist()), return_index=True)
        q, b, d = across(parse_hex(kept["phash"].to_pylist()), values, self.radius)
        for i, j, dist in zip(q.tolist(), first[b].tolist(), d.tolist()):  # by query: the first match names it
            found.setdefault(i, f"pHash {dist} bits from {keys[j]} in {names[j]}")
        if self.aligned is not None:
            self._aligned(kept, base, keys, names, found)
        where = places(kept)
        return [Merge(where[i], None, EXCLUDED_REASON, found[i]) for i in sorted(found)]

    def _aligned(self, kept: pa.Table, base: pa.Table, keys: list[str], names: list[str],
                 found: dict[int, str]) -> None:
        ours, theirs = Signed.of(kept), Signed.of(base)
        if ours.rows.size == 0 or theirs.rows.size == 0:
            return
        for c in candidates(ours.hashes, self.aligned.radius, theirs.hashes):
            row = int(ours.rows[c.a])
            if row in found:
                continue
            verdict = verify(c, ours, theirs, self.aligned.threshold)
            if verdict is not None:
                j = int(theirs.rows[c.b])
                inner, alignment = verdict
                found[row] = f"{relation(alignment, inner == 'a', keys[j])} in {names[j]}"
