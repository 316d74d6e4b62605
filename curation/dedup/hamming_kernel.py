"""The compiled inner loops of the Hamming search (numba): a part's counting sort, and the scan
that verifies every candidate of one part by popcount without materialising it.

numpy made the candidates as arrays (a repeat, an arange, a gather, a popcount, a compare), about
20 ns and 40 bytes a candidate; at 10 M hashes a radius-6 search has ~4e9 candidates. Here a
candidate is one load and one popcount in a loop, and only the hits are written. A scan stops
when its output is full and is resumed from the state it saved, so memory is bounded by the
output buffer whatever the buckets hold (a hot bucket costs time, never memory).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _popcount(typingctx, x):
    """LLVM's ctpop: one POPCNT instruction on the host CPU (numba has no np.bitwise_count)."""
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return types.uint64(types.uint64), codegen


@njit(nogil=True, cache=True)
def counting_sort(keys, buckets):
    """(order, start): order lists the rows by key, stably; bucket v is order[start[v]:start[v+1]].
    Linear time, where np.argsort of 10 M keys takes about a second."""
    start = np.zeros(buckets + 1, np.int64)
    for k in keys:
        start[k + 1] += 1
    for v in range(buckets):
        start[v + 1] += start[v]
    fill = start[:-1].copy()
    order = np.empty(keys.size, np.int64)
    for row in range(keys.size):
        k = keys[row]
        order[fill[k]] = row
        fill[k] += 1
    return order, start


@njit(nogil=True, cache=True)
def _met_before(x, earlier):
    """Whether a pair whose hashes differ by x was already reported by an earlier part: it was
    if it differs there by at most that part's threshold (row: shift, value mask, threshold)."""
    for p in range(earlier.shape[0]):
        if _popcount((x >> np.uint64(earlier[p, 0])) & np.uint64(earlier[p, 1])) <= np.uint64(earlier[p, 2]):
            return True
    return False


@njit(nogil=True, cache=True)
def scan(sorted_hashes, sorted_keys, start, masks, tops, q_lo, q_hi, radius, earlier, state,
         out_a, out_b, out_d):
    """Pairs of one part's table within `radius`, for the queries at sorted positions
    [q_lo, q_hi), as sorted positions (a, b) and distances, into the out arrays.

    Mask 0 pairs a hash with the hashes after it in its bucket; another mask pairs it with the
    bucket of its part XOR the mask, only when its part has the mask's top bit (`tops`) clear, so
    each pair is met from one side; the queries with it set come in runs, jumped over whole.
    Masks are the outer loop over a block of queries whose keys share their high bits: for one
    mask the buckets read are one stretch, which the prefetcher streams.

    Returns the hits written. `state` (mask index, query, offset in the bucket) is where the scan
    stands; when the out arrays fill it is saved there and the caller calls again; state[0] ==
    masks.size means done.
    """
    cap = out_a.size
    written = 0
    mi, q, k = state[0], state[1], state[2]
    r = np.uint64(radius)
    while mi < masks.size:
        mask = masks[mi]
        top = tops[mi]
        while q < q_hi:
            key = sorted_keys[q]
            if mask == 0:
                lo = q + 1
                hi = start[key + 1]
            elif key & top:  # the rest of this run of keys: to the next key with the bit clear
                q = start[(key | (2 * top - 1)) + 1]
                continue
            else:
                other = key ^ mask
                lo = start[other]
                hi = start[other + 1]
            h = sorted_hashes[q]
            j = lo + k
            k = 0
            while j < hi:
                x = h ^ sorted_hashes[j]
                d = _popcount(x)
                if d <= r and not _met_before(x, earlier):
                    if written == cap:
                        state[0], state[1], state[2] = mi, q, j - lo
                        return written
                    out_a[written] = q
                    out_b[written] = j
                    out_d[written] = d
                    written += 1
                j += 1
            q += 1
        mi += 1
        q = q_lo
    state[0], state[1], state[2] = mi, q, 0
    return written
