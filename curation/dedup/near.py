"""Near duplicates by pHash: clusters within a Hamming radius keep their largest copy, and
samples close to another dataset (an evaluation set) are dropped.

Both are dedup stages (`merge.DedupStage`): metadata in, merges out, no pixels. The radius
default comes from bench/calibrate_dedup.py (docs/BENCHMARKS.md, 29 photos): at 6 every
downscale, JPEG re-encode and mild tone change is found; the closest distinct pair seen was at
8 (two near-featureless photos under the same watermark), and the fitted tail of distinct-photo
distances predicts about 12 false pairs among a million images at 6, 350 at 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from shards import Dataset
from shards.errors import ConfigError

from .exact import provenance_rank
from .hamming import across, parse_hex, within
from .merge import Merge, places

DEFAULT_RADIUS = 6
NEAR_REASON = "near-duplicate"
EXCLUDED_REASON = "excluded"


class UnionFind:
    """Clusters from pairs; path halving and union by size keep it near-linear."""

    def __init__(self, n: int):
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        if self.size[a] < self.size[b]:
            a, b = b, a
        self.parent[b] = a
        self.size[a] += self.size[b]


def clusters(hashes: np.ndarray, radius: int) -> list[list[int]]:
    """Rows linked by chains of pairs within the radius, clusters of two or more only. The
    search runs on distinct values: n copies of one hash (a placeholder image, a blank) would
    be n^2/2 pairs, where a cluster needs none."""
    unique, inverse = np.unique(hashes, return_inverse=True)
    i, j, _ = within(unique, radius)
    uf = UnionFind(unique.size)
    for a, b in zip(i.tolist(), j.tolist()):
        uf.union(a, b)
    root = np.arange(unique.size)
    for v in set(i.tolist()) | set(j.tolist()):
        root[v] = uf.find(v)
    row_root = root[inverse.ravel()]
    order = np.argsort(row_root, kind="stable")  # rows stay in input order within a cluster
    _, first, counts = np.unique(row_root[order], return_index=True, return_counts=True)
    return [order[f:f + c].tolist() for f, c in zip(first, counts) if c > 1]


def keeper_rank(row: dict[str, Any]) -> tuple:
    """Higher is better: the most pixels (the point of the dataset), then provenance."""
    return (row["width"] * row["height"], *provenance_rank(row))


@dataclass(frozen=True)
class NearDedup:
    radius: int = DEFAULT_RADIUS
    name: str = "near-phash"

    def __post_init__(self) -> None:
        if not 0 <= self.radius <= 32:
            raise ConfigError(f"dedup radius must be in 0..32 bits, got {self.radius}")

    def describe(self) -> dict[str, Any]:
        return {"stage": self.name, "radius": self.radius,
                "keep": "most pixels, then provenance (licence, attribution, source), then input order"}

    def plan(self, kept: pa.Table) -> list[Merge]:
        if kept.num_rows < 2:
            return []
        hashes = parse_hex(kept["phash"].to_pylist())
        where = places(kept)
        merges = []
        for rows in clusters(hashes, self.radius):
            records = kept.take(rows).to_pylist()
            # rows are in input order and max() keeps the first of equals: ties go to the earliest
            best = max(range(len(rows)), key=lambda k: keeper_rank(records[k]))
            keep = records[best]
            for k, i in enumerate(rows):
                if k != best:
                    distance = int(hashes[i] ^ hashes[rows[best]]).bit_count()
                    merges.append(Merge(where[i], where[rows[best]], NEAR_REASON,
                                        f"pHash {distance} bits from {keep['key']} "
                                        f"({keep['width']}x{keep['height']}, kept)"))
        return merges


@dataclass(frozen=True)
class ExcludeNear:
    """Drop every sample within the radius of a sample of another dataset (e.g. the test set),
    so that nothing leaks between train and test. Reads only those datasets' index."""

    datasets: tuple[str, ...]
    radius: int = DEFAULT_RADIUS
    name: str = "exclude"

    def __post_init__(self) -> None:
        for url in self.datasets:  # a wrong path fails now, not after hours of fetching
            Dataset(url)

    def describe(self) -> dict[str, Any]:
        return {"stage": self.name, "datasets": list(self.datasets), "radius": self.radius}

    def base(self) -> tuple[np.ndarray, list[str], list[str]]:
        hashes, keys, names = [], [], []
        for url in self.datasets:
            index = Dataset(url).index.select(["key", "phash"])
            hashes.append(parse_hex(index["phash"].to_pylist()))
            keys += index["key"].to_pylist()
            names += [url] * index.num_rows
        return (np.concatenate(hashes) if hashes else np.empty(0, np.uint64)), keys, names

    def plan(self, kept: pa.Table) -> list[Merge]:
        base, keys, names = self.base()
        if kept.num_rows == 0 or base.size == 0:
            return []
        # distinct values only: a test set's many copies of one hash would multiply the pairs
        values, first = np.unique(base, return_index=True)
        q, b, d = across(parse_hex(kept["phash"].to_pylist()), values, self.radius)
        b = first[b]
        where = places(kept)
        merges, seen = [], set()
        for i, j, dist in zip(q.tolist(), b.tolist(), d.tolist()):  # sorted by query: first match names it
            if i not in seen:
                seen.add(i)
                merges.append(Merge(where[i], None, EXCLUDED_REASON,
                                    f"pHash {dist} bits from {keys[j]} in {names[j]}"))
        return merges
