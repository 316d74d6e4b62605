"""Every pair of 64-bit hashes within a Hamming radius, exactly, in bounded memory.

Brute force is N^2/2 popcounts (5e11 at a million hashes). This is multi-index hashing with
the general pigeonhole principle (Qin et al., "GPH", ICDE 2018): split the 64 bits into m
parts and give part i a threshold t_i with sum(t_i) = r - m + 1; two hashes within r then
differ by at most t_i bits in some part i (else the total would be at least r + 1). So each
part is a table: hashes bucketed by that part's value (a counting sort, the part is at most
24 bits, so buckets are addressed directly), and a hash meets the buckets of every value within
t_i of its own (flip masks). A threshold of -1 skips a part. The classic form, r + 1 parts that
must match exactly, is the case m = r + 1; at a million hashes its 7-bit buckets hold thousands
each, while three 21-bit parts searched within 2 flips each give ~200 times fewer candidates
at radius 8. `plan` picks m by an estimate of the work.

Every candidate pair is verified with a popcount. Candidates are made in chunks of at most
`budget` pairs, so a hot bucket (many hashes sharing a part) costs time, never memory; equal
hashes are collapsed first (they are pairs at distance 0, listed directly), so the commonest hot
bucket, one image many times, costs no search. The answer itself is every pair: k copies of a
hash are k^2/2 pairs, so clustering searches the distinct values instead (`near.clusters`).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

BITS = 64
MAX_PART_BITS = 24  # a directly addressed bucket table of 2^24 counts is 128 MB at most
DEFAULT_BUDGET = 1 << 21  # candidate pairs in flight per thread: 2M pairs, ~50 MB with temporaries


@dataclass(frozen=True)
class Part:
    shift: int
    bits: int
    threshold: int  # flips searched in this part; -1: the part is not searched


def plan(n: int, radius: int) -> tuple[Part, ...]:
    """The split of 64 bits whose estimated work (lookups plus candidates) is least for n hashes."""
    if not 0 <= radius < BITS:
        raise ValueError(f"radius must be in 0..{BITS - 1}, got {radius}")
    best, best_cost = None, math.inf
    fewest = math.ceil(BITS / MAX_PART_BITS)
    for m in range(fewest, max(min(radius + 1, BITS), fewest) + 1):
        parts = split(m, radius)
        cost = sum(_volume(p.bits, p.threshold) * n * (1 + n / 2**p.bits) for p in parts if p.threshold >= 0)
        if cost < best_cost:
            best, best_cost = parts, cost
    return best


def split(m: int, radius: int) -> tuple[Part, ...]:
    widths = [BITS // m + (i < BITS % m) for i in range(m)]  # longer parts first
    base, extra = divmod(radius - m + 1, m)  # floor division: totals below zero skip parts
    thresholds = [base + (i < extra) for i in range(m)]
    shifts = np.cumsum([0, *widths[:-1]])
    return tuple(Part(int(s), w, t) for s, w, t in zip(shifts, widths, thresholds))


def _volume(bits: int, radius: int) -> int:
    return sum(math.comb(bits, k) for k in range(radius + 1))


def flip_masks(bits: int, threshold: int) -> list[int]:
    """Every value with 1..threshold bits set in `bits` bits."""
    return [sum(1 << b for b in chosen) for k in range(1, threshold + 1)
            for chosen in itertools.combinations(range(bits), k)]


class Table:
    """One part of the base hashes, counting-sorted: bucket v holds order[start[v]:start[v]+count[v]]."""

    def __init__(self, hashes: np.ndarray, part: Part):
        self.part = part
        keys = part_values(hashes, part)
        self.order = np.argsort(keys, kind="stable").astype(np.int64)
        self.sorted_keys = keys[self.order]
        self.sorted_hashes = hashes[self.order]  # candidates read hashes in bucket order
        # int32 bucket arrays: half the bytes for the random gathers that dominate the search
        self.count = np.bincount(keys, minlength=1 << part.bits).astype(np.int32)
        self.start = (np.cumsum(self.count, dtype=np.int64) - self.count).astype(np.int64)

    def with_clear(self, bit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows whose part has `bit` clear, their hashes and part values, in bucket order (so
        that the gathers of neighbouring buckets stay close in memory)."""
        keep = (self.sorted_keys & bit) == 0
        return self.order[keep], self.sorted_hashes[keep], self.sorted_keys[keep]


def part_values(hashes: np.ndarray, part: Part) -> np.ndarray:
    return ((hashes >> np.uint64(part.shift)) & np.uint64((1 << part.bits) - 1)).astype(np.int32)


def expand(rows: np.ndarray, start: np.ndarray, count: np.ndarray, budget: int) -> Iterator[tuple]:
    """(row, position) for every row and every position in its range [start, start + count), in
    chunks of about `budget` pairs; a single range longer than that is cut into slices."""
    keep = np.flatnonzero(count)
    rows, start, count = rows[keep], start[keep], count[keep].astype(np.int64)
    ends = np.cumsum(count)
    begin = 0
    while begin < rows.size:
        done = int(ends[begin - 1]) if begin else 0
        stop = max(int(np.searchsorted(ends, done + budget, side="right")), begin + 1)
        if stop == begin + 1 and count[begin] > budget:  # one hot range: slice it
            for offset in range(0, int(count[begin]), budget):
                size = min(budget, int(count[begin]) - offset)
                yield np.full(size, rows[begin]), np.arange(size) + start[begin] + offset
        else:
            c = count[begin:stop]
            total = int(ends[stop - 1]) - done
            # position = start of its range + its rank within the range
            shift = start[begin:stop] - (ends[begin:stop] - c - done)
            yield np.repeat(rows[begin:stop], c), np.arange(total) + np.repeat(shift, c)
        begin = stop


def _split_hot(start: np.ndarray, count: np.ndarray, carry: tuple, budget: int):
    """Cut ranges longer than `budget` into pieces of at most `budget` (a hot bucket)."""
    if count.size == 0 or int(count.max()) <= budget:
        return start, count, carry
    pieces = -(-count // budget)
    idx = np.repeat(np.arange(count.size), pieces)
    k = np.arange(idx.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    return (start[idx] + k * budget, np.minimum(count[idx] - k * budget, budget),
            tuple(x[idx] for x in carry))


def probe(table: Table, qhash: np.ndarray, qrow: np.ndarray, start: np.ndarray, count: np.ndarray,
          radius: int, budget: int) -> list[tuple]:
    """Verify query i against bucket positions [start[i], start[i] + count[i]) of `table`, at
    most about `budget` candidates at a time; returns the hits as (query row, base row, distance)."""
    nz = np.flatnonzero(count)
    start, count, (qhash, qrow) = _split_hot(start[nz], count[nz].astype(np.int64), (qhash[nz], qrow[nz]), budget)
    ends = np.cumsum(count)
    cuts = np.searchsorted(ends, np.arange(budget, int(ends[-1]) if ends.size else 0, budget), side="right")
    found = []
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), count.size]):
        if lo >= hi:
            continue
        c = count[lo:hi]
        e = np.cumsum(c)
        # a candidate's position = its range's start + its rank within the range
        pos = np.arange(int(e[-1])) + np.repeat(start[lo:hi] - (e - c), c)
        distance = np.bitwise_count(np.repeat(qhash[lo:hi], c) ^ table.sorted_hashes[pos])
        hit = np.flatnonzero(distance <= radius)  # few: map only these back to rows
        row = np.searchsorted(e, hit, side="right")
        found.append((qrow[lo:hi][row], table.order[pos[hit]], distance[hit]))
    return found


def _collect(found: list[tuple], dtype=np.int64):
    if not found:
        return np.empty(0, dtype), np.empty(0, dtype), np.empty(0, np.uint8)
    return tuple(np.concatenate(parts) for parts in zip(*found))


def within(hashes: np.ndarray, radius: int, budget: int = DEFAULT_BUDGET, workers: int = 2):
    """Every unordered pair (i, j), i < j, with popcount(h[i] ^ h[j]) <= radius: arrays i, j and
    the distances, sorted by (i, j)."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    unique, inverse = np.unique(hashes, return_inverse=True)
    found = list(_equal_pairs(inverse.ravel(), budget))
    pairs = _self_join(unique, radius, budget, workers)  # between distinct values only
    if pairs[0].size:
        members = _members(inverse.ravel(), unique.size)
        found += list(_spread(pairs, members, budget))
    i, j, d = _collect(found)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((hi, lo))
    return lo[order], hi[order], d[order]


def _self_join(hashes: np.ndarray, radius: int, budget: int, workers: int):
    """Pairs of distinct hashes within radius, each once."""
    n = hashes.size
    found: list[tuple] = []
    # Threads share the tables without copies; numpy releases the GIL in its big array
    # operations (a million hashes at radius 8: 4.0 s on 2 threads, 6.3 s on 1; BENCHMARKS.md).
    with ThreadPoolExecutor(workers) as pool:
        for part in plan(n, radius):
            if part.threshold < 0:
                continue
            table = Table(hashes, part)
            by_top: dict[int, list[int]] = defaultdict(list)
            for mask in flip_masks(part.bits, part.threshold):
                by_top[mask.bit_length()].append(mask)
            groups = list(by_top.values())
            jobs = [pool.submit(_in_buckets, table, radius, budget)]
            jobs += [pool.submit(_across_buckets, table, groups[k::workers], radius, budget)
                     for k in range(workers)]
            for job in jobs:
                found += job.result()
    i, j, d = _collect(found)
    if i.size == 0:
        return i, j, d
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    # A pair close in several parts is met in each: keep it once.
    _, first = np.unique(lo * n + hi, return_index=True)
    return lo[first], hi[first], d[first]


def _in_buckets(table: Table, radius: int, budget: int) -> list[tuple]:
    """Pairs sharing this part: each member of a bucket with the members after it."""
    pos = np.arange(table.order.size, dtype=np.int64)
    end = table.start[table.sorted_keys] + table.count[table.sorted_keys]
    return probe(table, table.sorted_hashes, table.order, pos + 1, end - pos - 1, radius, budget)


def _across_buckets(table: Table, groups: list[list[int]], radius: int, budget: int) -> list[tuple]:
    """Pairs whose parts differ by one of the masks. Each is met from one side only: the hash
    whose part has the mask's top bit clear. Masks come grouped by top bit, so one subset of
    rows is held at a time."""
    found = []
    for masks in groups:
        rows, hashes, keys = table.with_clear(1 << (masks[0].bit_length() - 1))
        for mask in masks:
            other = keys ^ mask
            found += probe(table, hashes, rows, table.start[other], table.count[other], radius, budget)
    return found


def _members(inverse: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(inverse, kind="stable").astype(np.int64)
    count = np.bincount(inverse, minlength=groups).astype(np.int64)
    return order, np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64), count


def _equal_pairs(inverse: np.ndarray, budget: int) -> Iterator[tuple]:
    """Pairs of equal hashes (distance 0), in chunks."""
    order, start, count = _members(inverse, int(inverse.max()) + 1 if inverse.size else 0)
    pos = np.arange(order.size, dtype=np.int64)
    end = np.repeat(start + count, count)
    for qi, bi in expand(pos, pos + 1, end - pos - 1, budget):
        yield order[qi], order[bi], np.zeros(qi.size, np.uint8)


def _spread(pairs, members, budget: int) -> Iterator[tuple]:
    """Pairs of distinct values back to pairs of inputs: every copy of one with every copy of
    the other."""
    order, start, count = members
    a, b, d = pairs
    for k, pos in expand(np.arange(a.size), start[a], count[a], budget):
        left = order[pos]
        rows = b[k]
        for kk, pos2 in expand(np.arange(rows.size), start[rows], count[rows], budget):
            yield left[kk], order[pos2], d[k][kk]


def across(queries: np.ndarray, base: np.ndarray, radius: int, budget: int = DEFAULT_BUDGET, workers: int = 2):
    """Every (q, b) with popcount(queries[q] ^ base[b]) <= radius: arrays q, b, distances."""
    queries = np.ascontiguousarray(queries, dtype=np.uint64)
    base = np.ascontiguousarray(base, dtype=np.uint64)
    found: list[tuple] = []
    rows = np.arange(queries.size, dtype=np.int64)
    with ThreadPoolExecutor(workers) as pool:  # as in _self_join: numpy releases the GIL
        for part in plan(max(base.size, 1), radius):
            if part.threshold < 0 or base.size == 0:
                continue
            table = Table(base, part)
            keys = part_values(queries, part)
            masks = [0, *flip_masks(part.bits, part.threshold)]
            jobs = [pool.submit(_probe_masks, table, queries, rows, keys, masks[k::workers], radius, budget)
                    for k in range(workers)]
            for job in jobs:
                found += job.result()
    q, b, d = _collect(found)
    if q.size:
        _, first = np.unique(q * base.size + b, return_index=True)
        q, b, d = q[first], b[first], d[first]
    return q, b, d


def _probe_masks(table: Table, queries: np.ndarray, rows: np.ndarray, keys: np.ndarray, masks: list[int],
                 radius: int, budget: int) -> list[tuple]:
    found = []
    for mask in masks:
        other = keys ^ mask
        found += probe(table, queries, rows, table.start[other], table.count[other], radius, budget)
    return found


def brute_force(hashes: np.ndarray, radius: int):
    """The reference: every pair by popcount, row by row (for tests and the benchmark)."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    found = []
    for i in range(hashes.size - 1):
        d = np.bitwise_count(hashes[i + 1:] ^ hashes[i])
        j = np.nonzero(d <= radius)[0]
        found.append((np.full(j.size, i, np.int64), j + i + 1, d[j]))
    return _collect(found)


def parse_hex(values) -> np.ndarray:
    """16-digit hex pHashes (the index's `phash` column) as uint64."""
    return np.array([int(v, 16) for v in values], dtype=np.uint64)
