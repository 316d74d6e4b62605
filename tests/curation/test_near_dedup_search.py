"""The Hamming search finds exactly the pairs brute force finds, planted pairs at every distance
up to the radius included, hot buckets and repeated hashes included; and the near-dedup stage
keeps the largest copy of a cluster whatever the input order."""

import itertools

import numpy as np
import pyarrow as pa
import pytest

from curation.dedup import MergePlan, NearDedup, provenance_rank
from curation.dedup.hamming import across, brute_force, plan, split, within
from curation.dedup.near import clusters


def flip(value: int, bits, rng) -> int:
    for b in rng.choice(64, bits, replace=False):
        value ^= 1 << int(b)
    return value


def planted(n: int, radius: int, seed: int) -> tuple[np.ndarray, set]:
    """Random hashes with pairs planted at every distance 0..radius+2 (the last two just outside)."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    pairs = set()
    for k, d in enumerate(itertools.islice(itertools.cycle(range(radius + 3)), n // 4)):
        a, b = 2 * k, 2 * k + 1
        h[b] = np.uint64(flip(int(h[a]), d, rng))
        if d <= radius:
            pairs.add((a, b))
    return h, pairs


def as_set(found) -> set:
    return set(zip(found[0].tolist(), found[1].tolist()))


@pytest.mark.parametrize("radius", [0, 1, 3, 6, 8, 10, 14])
def test_search_equals_brute_force_and_finds_every_planted_pair(radius):
    h, pairs = planted(3000, radius, seed=radius)
    found = within(h, radius, budget=5000)
    assert as_set(found) == as_set(brute_force(h, radius))
    assert pairs <= as_set(found)
    # distances reported are the real ones
    assert all(int(h[i] ^ h[j]).bit_count() == d for i, j, d in zip(*(x.tolist() for x in found)))


def test_hot_buckets_are_searched_exactly_in_small_chunks():
    rng = np.random.default_rng(7)
    h = rng.integers(0, 2**64 - 1, size=4000, dtype=np.uint64, endpoint=True)
    h[:300] = h[0]  # one image 300 times: collapsed before the search
    low = np.uint64(0xFFFFFFFFFFFF0000)
    # 1000 hashes sharing their upper 48 bits: one part's bucket holds all of them
    h[300:1300] = (h[300] & low) | rng.integers(0, 2**16, size=1000, dtype=np.uint64)
    h[1300:1400] = 0  # the blank image's hash
    for budget in (257, 1 << 21):
        found = within(h, 6, budget=budget)
        assert as_set(found) == as_set(brute_force(h, 6))
    assert len(as_set(found)) > 300 * 299 // 2 + 100 * 99 // 2


def test_across_equals_brute_force():
    base, _ = planted(2000, 8, seed=1)
    rng = np.random.default_rng(2)
    queries = np.array([flip(int(base[i]), int(rng.integers(0, 12)), rng) for i in range(0, 2000, 7)]
                       + [int(x) for x in rng.integers(0, 2**63, 200)], dtype=np.uint64)
    q, b, d = across(queries, base, 8, budget=300)
    expect = {(i, j) for i in range(queries.size) for j in range(base.size)
              if int(queries[i] ^ base[j]).bit_count() <= 8}
    assert set(zip(q.tolist(), b.tolist())) == expect and len(expect) > 150


def test_plan_obeys_the_pigeonhole_bound():
    for radius in range(0, 20):
        for n in (10, 10**6):
            parts = plan(n, radius)
            assert sum(p.bits for p in parts) == 64 and all(p.bits <= 24 for p in parts)
            # any pair within the radius differs by at most t_i bits in some searched part
            assert sum(p.threshold + 1 for p in parts) >= radius + 1
    assert [p.threshold for p in split(3, 8)] == [2, 2, 2]


def kept_table(rows: list[dict]) -> pa.Table:
    base = {"license": None, "owner": None, "title": None, "url": None, "license_url": None,
            "date_taken": None, "source": "folder"}
    return pa.Table.from_pylist([{**base, **r, "slice": k // 2, "row": k % 2} for k, r in enumerate(rows)])


def test_keeper_is_the_largest_copy_in_every_arrival_order():
    rng = np.random.default_rng(0)
    original = int(rng.integers(0, 2**63))
    copies = [("orig", 4000, 3000, original), ("half", 2000, 1500, flip(original, 2, rng)),
              ("quarter", 1000, 750, flip(original, 4, rng)), ("q60", 4000, 3000 - 1, flip(original, 6, rng))]
    other = [("other", 5000, 4000, original ^ 0xFFFF_FFFF_0000_0000)]  # a distinct, larger photo
    for order in itertools.permutations(copies):
        rows = [{"key": k, "width": w, "height": h, "phash": f"{p:016x}"} for k, w, h, p in [*order, *other]]
        table = kept_table(rows)
        merges = NearDedup(8).plan(table)
        key_at = {(r["slice"], r["row"]): r["key"] for r in table.to_pylist()}
        assert {key_at[m.kept] for m in merges} == {"orig"}
        assert {key_at[m.dropped] for m in merges} == {"half", "quarter", "q60"}
        first = order[0]
        # pixels recovered: the keeper's over the copy that arrived first
        assert MergePlan(table, merges).summary() == {"near-duplicate": 3, "merged": 3, "clusters": 1, "removed": 3,
                                                      "pixels_recovered": 4000 * 3000 - first[1] * first[2]}


def test_equal_pixels_go_to_the_licence_then_the_earliest():
    rows = [{"key": "a", "width": 100, "height": 100, "phash": "0" * 16},
            {"key": "b", "width": 100, "height": 100, "phash": "0" * 15 + "3", "license": "cc-by"},
            {"key": "c", "width": 100, "height": 100, "phash": "0" * 15 + "1", "license": "cc-by"}]
    table = kept_table(rows)
    merges = NearDedup(8).plan(table)
    assert {m.kept for m in merges} == {(0, 1)}  # b: licensed, and earlier than c
    assert provenance_rank(rows[1]) > provenance_rank(rows[0])


def test_clusters_of_many_copies_need_no_quadratic_pairs():
    rng = np.random.default_rng(3)
    h = rng.integers(0, 2**64 - 1, size=20000, dtype=np.uint64, endpoint=True)
    h[:10000] = h[0]  # one placeholder image 10,000 times: 5e7 pairs if listed
    h[10000] = h[0] ^ np.uint64(0b111)  # and a copy 3 bits away
    groups = clusters(h, 8)
    assert [list(range(10001))] == [g for g in groups if len(g) > 2]
    assert all(len(g) == 2 for g in groups if len(g) <= 2)  # any random pair within 8 bits
