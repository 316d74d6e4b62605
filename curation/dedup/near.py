"""Near duplicates by pHash: clusters within a Hamming radius keep their best copy (the keeper
rule, `keeper.py`).

It is a dedup stage (`merge.DedupStage`): metadata in, merges out, no pixels. The radius
default comes from bench/calibrate_dedup.py (docs/BENCHMARKS.md, 29 photos and 69 copies of
each): at 4 every downscale to 1/4 and every JPEG re-encode from q60 is found, and all but one
each of the copies downscaled to 1/8 and brightened by 15%. The closest distinct pair is at 6
(a star field and a brick wall under the same heavy watermark), and the fitted tail of
distinct-photo distances predicts about 1 false pair among a million images at 4, 31 at 6.
What 4 misses of the copies (1/8 downscales, crops, overlays) the crops stage (`crops.py`)
finds, with a check that pHash cannot make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from plumbing.errors import ConfigError

from .hamming import parse_hex, within
from .keeper import because, choose, records
from .merge import Merge, places

DEFAULT_RADIUS = 4
NEAR_REASON = "near-duplicate"


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


@dataclass(frozen=True)
class NearDedup:
    radius: int = DEFAULT_RADIUS
    name: str = "near-phash"

    def __post_init__(self) -> None:
        if not 0 <= self.radius <= 32:
            raise ConfigError(f"dedup radius must be in 0..32 bits, got {self.radius}")

    def describe(self) -> dict[str, Any]:
        return {"stage": self.name, "radius": self.radius,
                "keep": "most pixels, then quality, then provenance (licence, attribution, source), then input order"}

    def plan(self, kept: pa.Table) -> list[Merge]:
        if kept.num_rows < 2:
            return []
        hashes = parse_hex(kept["phash"].to_pylist())
        where = places(kept)
        merges = []
        for rows in clusters(hashes, self.radius):
            found = records(kept, rows)
            best = choose(found)  # rows are in input order: arrival breaks ties
            keep = found[best]
            for k, i in enumerate(rows):
                if k != best:
                    why = because(found, best, k)
                    distance = int(hashes[i] ^ hashes[rows[best]]).bit_count()
                    merges.append(Merge(where[i], where[rows[best]], NEAR_REASON,
                                        f"pHash {distance} bits from {keep['key']} "
                                        f"({keep['width']}x{keep['height']}, kept: {why})", why))
        return merges
