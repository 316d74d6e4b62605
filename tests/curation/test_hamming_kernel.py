"""The compiled search (curation/dedup/hamming_kernel.py) reports exactly brute force's pairs, in
its order, on random and clustered hashes at every radius, on the smallest inputs, and in output
chunks of any size (a hot bucket costs calls, never memory)."""

import numpy as np
import pytest

from curation.dedup.hamming import brute_force, flip_masks, part_values, plan, within
from curation.dedup.hamming_kernel import counting_sort, scan


def clustered(n: int, centres: int, spread: int, seed: int) -> np.ndarray:
    """Hashes around a few centres, each within `spread` random bits of its centre (copies too)."""
    rng = np.random.default_rng(seed)
    centre = rng.integers(0, 2**64 - 1, size=centres, dtype=np.uint64, endpoint=True)
    h = centre[rng.integers(0, centres, n)]
    for _ in range(spread):
        flip = np.uint64(1) << rng.integers(0, 64, n).astype(np.uint64)
        h = np.where(rng.random(n) < 0.5, h ^ flip, h)
    return h


def assert_same(found, expect):
    for got, want in zip(found, expect):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("radius", [0, 1, 2, 4, 6, 9, 13, 20, 32, 47, 63])
def test_random_and_clustered_equal_brute_force_at_every_radius(radius):
    rng = np.random.default_rng(radius)
    random = rng.integers(0, 2**64 - 1, size=400, dtype=np.uint64, endpoint=True)
    for h in (random, clustered(400, 5, radius + 3, seed=radius)):
        for budget in (3, 1 << 21):
            assert_same(within(h, radius, budget=budget), brute_force(h, radius))


@pytest.mark.parametrize("n", [0, 1, 2])
def test_the_smallest_inputs(n):
    h = np.array([5, 7][:n], np.uint64)
    for radius in (0, 1, 63):
        found = within(h, radius)
        assert_same(found, brute_force(h, radius))
        assert found[0].dtype == np.int64 and found[2].dtype == np.uint8


def test_a_hot_bucket_is_scanned_in_chunks_of_the_output_buffer():
    rng = np.random.default_rng(11)
    h = rng.integers(0, 2**64 - 1, size=3000, dtype=np.uint64, endpoint=True)
    low = np.uint64(0xFFFF)
    h[:2000] = (h[0] & ~low) | rng.integers(0, 2**16, size=2000, dtype=np.uint64)  # one 48-bit bucket
    h = np.unique(h)
    part = plan(h.size, 6)[-1]  # the top bits: the hot part
    keys = part_values(h, part)
    order, start = counting_sort(keys, 1 << part.bits)
    assert np.array_equal(order, np.argsort(keys, kind="stable"))
    masks = np.array(sorted([0, *flip_masks(part.bits, part.threshold)]), np.int64)
    tops = np.array([1 << (m.bit_length() - 1) if m else 0 for m in masks.tolist()], np.int64)
    table = (h[order], keys[order], start)
    none = np.zeros((0, 3), np.int64)

    def run(cap):
        out = (np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.uint8))
        state, found, calls = np.array([0, 0, 0], np.int64), [], 0
        while state[0] < masks.size:
            written = scan(*table, masks, tops, 0, h.size, 6, none, state, *out)
            assert written <= cap
            found += list(zip(out[0][:written].tolist(), out[1][:written].tolist()))
            calls += 1
        return found, calls

    whole, one_call = run(1 << 22)
    chunked, calls = run(97)
    assert one_call == 1 and calls > len(whole) // 97 and chunked == whole
    # every pair of the part's table within 6 bits whose part differs by one of the masks
    a, b, _ = brute_force(h[order], 6)
    near = np.bitwise_count(keys[order][a] ^ keys[order][b]) <= part.threshold
    expect = set(zip(a[near].tolist(), b[near].tolist()))
    assert {tuple(sorted(p)) for p in whole} == expect and len(whole) == len(expect) > 10_000
