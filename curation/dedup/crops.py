"""Crops and overlays: the second near-duplicate stage, on stored signatures only.

Candidates come from the windows' hashes (`image_signature.WINDOWS`), searched within a radius:
- one image's full frame against another's inset windows: a crop of up to ~6% per side;
- full frame against full frame, and each band-free window against the same window of the
  other: a smaller crop, or an overlay in a corner or along an edge.

Each candidate pair is then checked by alignment (`alignment.py`): it is a copy only when one image
sits inside the other at a uniform scale and their aligned thumbnails agree. Half-overlapping
crops, shifted views of one scene and tiles of one photo stick out of each other's frame and
stay distinct. The best copy by the keeper rule (`keeper.py`) absorbs the copies it was checked
against, then the best remaining one, and so on: a copy goes only into an image it was checked
against, never along a chain. Samples without a signature (datasets made before signatures were stored) take
no part: the pHash stage still sees them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from plumbing.errors import ConfigError

from .alignment import DEFAULT_THRESHOLD, Alignment, Box, accept, align
from .hamming import across, within
from .image_signature import BANDS, FULL, INSETS, WINDOWS, hashes_of, thumbs_of
from .keeper import because, choose, records
from .merge import Merge, places

DEFAULT_ALIGN_RADIUS = 6
ALIGNED_REASON = "near-duplicate"
SAME_FRAME = Box(0.015, 0.015, 0.97, 0.97)  # a same-window match: equal frames or a crop of ~0-3%


@dataclass(frozen=True)
class Candidate:
    a: int  # rows in the signed table
    b: int
    window_a: int  # indexes into image_signature.WINDOWS
    window_b: int


@dataclass(frozen=True)
class Signed:
    """The rows that have a signature: their hashes, thumbnails and sizes, and where they are."""

    rows: np.ndarray  # row in the table each signed row came from
    hashes: np.ndarray  # (n, len(WINDOWS)) uint64
    thumbs: np.ndarray  # (n, side, side) uint8
    sizes: np.ndarray  # (n, 2) width, height

    @classmethod
    def of(cls, table: pa.Table) -> Signed:
        if "windows" not in table.column_names:
            return cls(np.empty(0, np.int64), np.empty((0, len(WINDOWS)), np.uint64),
                       np.empty((0, 1, 1), np.uint8), np.empty((0, 2), np.int64))
        have = np.asarray(pc.is_valid(table["windows"]).to_numpy(zero_copy_only=False), bool)
        rows = np.flatnonzero(have)
        # all signed (a new dataset): read the columns in place, no copy of a gigabyte of thumbnails
        part = table if rows.size == table.num_rows else table.take(pa.array(rows, pa.int64()))
        return cls(rows, hashes_of(part["windows"].combine_chunks()), thumbs_of(part["thumb"].combine_chunks()),
                   np.stack([np.asarray(part["width"], np.int64), np.asarray(part["height"], np.int64)], axis=1))


def window_box(window: int) -> Box:
    """A window of `image_signature.WINDOWS` as a box in its image's frame."""
    left, top, right, bottom = WINDOWS[list(WINDOWS)[window]]
    return Box(left, top, 1 - left - right, 1 - top - bottom)


def candidates(hashes: np.ndarray, radius: int, base: np.ndarray | None = None) -> Iterator[Candidate]:
    """Window matches within `radius`: in one set (`base` None, each pair once) or from
    `hashes` (a) to `base` (b). Each pair is named once, by its closest match."""
    other = hashes if base is None else base
    found = []  # arrays: a, b, window of a, window of b, distance
    for window in (FULL, *BANDS):  # same window against same window
        a, b, d = within(hashes[:, window], radius) if base is None else across(hashes[:, window], other[:, window], radius)
        found.append((a, b, np.full(a.size, window), np.full(a.size, window), d))
    insets = np.array(INSETS)
    # full frame against inset windows: the full frame's image may be the crop
    a, k, d = across(hashes[:, FULL], other[:, insets].ravel(), radius)
    found.append((a, k // insets.size, np.full(a.size, FULL), insets[k % insets.size], d))
    if base is not None:  # in one set, the search above met every pair both ways already
        b, k, d = across(other[:, FULL], hashes[:, insets].ravel(), radius)
        found.append((k // insets.size, b, insets[k % insets.size], np.full(b.size, FULL), d))
    a, b, wa, wb, d = (np.concatenate(column).astype(np.int64) for column in zip(*found))
    if base is None:  # one set: drop an image against itself, and name each pair low to high
        keep = a != b
        a, b, wa, wb, d = a[keep], b[keep], wa[keep], wb[keep], d[keep]
        swap = a > b
        a, b = np.where(swap, b, a), np.where(swap, a, b)
        wa, wb = np.where(swap, wb, wa), np.where(swap, wa, wb)
    order = np.lexsort((wb, wa, d, b, a))  # per pair, the closest match first
    a, b, wa, wb = a[order], b[order], wa[order], wb[order]
    first = np.ones(a.size, bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    for x, y, u, v in zip(a[first].tolist(), b[first].tolist(), wa[first].tolist(), wb[first].tolist()):
        yield Candidate(x, y, u, v)


def hypotheses(c: Candidate) -> list[tuple[str, Box]]:
    """Where the inner image may sit in the outer one ("a" in "b" or "b" in "a"), likeliest
    first. A low-texture image can match the wrong way round, so the other way is tried too."""
    if c.window_a == c.window_b:
        return [("a", SAME_FRAME), ("b", SAME_FRAME)]
    if c.window_a == FULL:  # a's whole frame looks like an inset window of b: a is the crop
        return [("a", window_box(c.window_b)), ("b", SAME_FRAME)]
    return [("b", window_box(c.window_a)), ("a", SAME_FRAME)]


def verify(c: Candidate, left: Signed, right: Signed, threshold: float) -> tuple[str, Alignment] | None:
    """Which image of the pair ("a" or "b") is the inner, cropped copy, and how it aligns;
    None when the pair is not one image."""
    for inner_side, box in hypotheses(c):
        if inner_side == "a":
            inner, outer = left.thumbs[c.a], right.thumbs[c.b]
            (wi, hi), (wo, ho) = left.sizes[c.a], right.sizes[c.b]
        else:
            inner, outer = right.thumbs[c.b], left.thumbs[c.a]
            (wi, hi), (wo, ho) = right.sizes[c.b], left.sizes[c.a]
        found = align(outer, inner, box, (hi / ho) / (wi / wo))
        if accept(found, threshold):
            return inner_side, found
    return None


def relation(found: Alignment, inner: bool, other: str) -> str:
    """How a copy relates to `other`, for its reject's detail: which one sits inside which, the
    crop on each side, and how well the thumbnails agree."""
    crops = [max(0.0, m) for m in found.box.margins()]
    agree = f"aligned thumbnails agree at {found.score:.2f}"
    if max(crops) < 0.01:
        return f"the same frame as {other} ({agree})"
    sides = ", ".join(f"{name} {m:.1%}" for name, m in zip(("left", "top", "right", "bottom"), crops) if m >= 0.01)
    return f"{'a crop of' if inner else 'the uncropped frame of'} {other} ({sides}; {agree})"


@dataclass(frozen=True)
class AlignedDedup:
    radius: int = DEFAULT_ALIGN_RADIUS
    threshold: float = DEFAULT_THRESHOLD
    name: str = "near-aligned"

    def __post_init__(self) -> None:
        if not 0 <= self.radius <= 16:
            raise ConfigError(f"aligned dedup radius must be in 0..16 bits, got {self.radius}")
        if not 0.5 <= self.threshold <= 1.0:
            raise ConfigError(f"alignment threshold must be in 0.5..1.0, got {self.threshold}")

    def describe(self) -> dict[str, Any]:
        return {"stage": self.name, "radius": self.radius, "threshold": self.threshold,
                "windows": {name: list(m) for name, m in WINDOWS.items()},
                "keep": "most pixels, then quality, then provenance, then input order"}

    def plan(self, kept: pa.Table) -> list[Merge]:
        signed = Signed.of(kept)
        if signed.rows.size < 2:
            return []
        pairs: dict[tuple[int, int], tuple[int, Alignment]] = {}  # (a, b) table rows, a < b: inner row, alignment
        for c in candidates(signed.hashes, self.radius):
            verdict = verify(c, signed, signed, self.threshold)
            if verdict is not None:
                inner, found = verdict
                a, b = int(signed.rows[c.a]), int(signed.rows[c.b])
                pairs[(min(a, b), max(a, b))] = (a if inner == "a" else b, found)
        return self._merges(kept, pairs)

    def _merges(self, kept: pa.Table, pairs: dict[tuple[int, int], tuple[int, Alignment]]) -> list[Merge]:
        """Each copy merges into a keeper it was checked against directly. Not clusters of
        chains: two crops that only overlap, each containing a small third crop, are not copies
        of each other, and a chain through the third would merge them. So the best copy (by the
        keeper rule) absorbs its direct partners, then the best remaining one, and so on."""
        if not pairs:
            return []
        partners: dict[int, list[int]] = {}
        for a, b in sorted(pairs):
            partners.setdefault(a, []).append(b)
            partners.setdefault(b, []).append(a)
        rows = sorted(partners)
        # one take for every row involved: a take from a million-row table costs the same for 2 rows or 2,000
        found_records = dict(zip(rows, records(kept, rows)))

        def first(x: int, y: int) -> int:  # the keeper rule on two rows, given in input order
            lo, hi = min(x, y), max(x, y)
            winner = lo if choose([found_records[lo], found_records[hi]]) == 0 else hi
            return -1 if winner == x else 1

        where = places(kept)
        taken: set[int] = set()
        merges = []
        for keeper in sorted(rows, key=cmp_to_key(first)):
            if keeper in taken:
                continue
            taken.add(keeper)
            for row in partners[keeper]:
                if row in taken:
                    continue
                taken.add(row)
                keep, copy = found_records[keeper], found_records[row]
                why = because([keep, copy], 0, 1) if keeper < row else because([copy, keep], 1, 0)
                inner, found = pairs[(min(row, keeper), max(row, keeper))]
                merges.append(Merge(where[row], where[keeper], ALIGNED_REASON,
                                    f"{relation(found, inner == row, keep['key'])}; kept {keep['key']} "
                                    f"({keep['width']}x{keep['height']}): {why}", why))
        return merges


def unsigned(table: pa.Table | None, stages) -> int:
    """How many samples the aligned stage cannot see, for want of a signature; 0 without it."""
    if table is None or not any(isinstance(s, AlignedDedup) for s in stages):
        return 0
    return table.num_rows - Signed.of(table).rows.size
