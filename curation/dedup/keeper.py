"""The keeper rule: which copy of a duplicate stays, decided in one place for every stage.

1. The most pixels: the point of the dataset is resolution.
2. Among equal pixel counts, the better quality. For JPEGs with stored quality (estimated from
   their quantisation tables at fetch), the higher quality; a lossless file (PNG, TIFF, BMP)
   counts as 100. Without that (a dataset made before signatures), copies of one format
   compare by bytes per pixel. Copies of different formats without a quality are not compared
   here.
3. Then provenance: a licence, then how much attribution, then the source (`provenance_rank`).
4. Then arrival: the earliest in the input (records are given in input order).

`choose` returns the keeper; `because` words, for one merge, the first step at which the
keeper beats the copy it absorbs, for the dedup records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

PROVENANCE_FIELDS = ("license", "owner", "title", "url", "license_url", "date_taken")
# what the rule and the merge details read of a sample (not its signature's kilobyte of thumbnail)
RULE_COLUMNS = (*PROVENANCE_FIELDS, "source", "key", "width", "height", "format", "nbytes", "quality")
SOURCE_RANK = {"flickr": 2, "url": 1, "folder": 0}
LOSSLESS = ("png", "tiff", "tif", "bmp")


def records(table: pa.Table, rows: list[int]) -> list[dict[str, Any]]:
    """The rule's columns of these rows of a dedup table, as dicts, in the order given."""
    columns = [c for c in RULE_COLUMNS if c in table.column_names]
    return table.select(columns).take(pa.array(rows, pa.int64())).to_pylist()


def provenance_rank(row: dict[str, Any]) -> tuple:
    """Higher is better: a licence first (it decides whether the image may be used at all),
    then how much attribution there is, then the source."""
    filled = sum(1 for name in PROVENANCE_FIELDS if row.get(name))
    return (bool(row.get("license")), filled, SOURCE_RANK.get(row.get("source"), 0))


def pixels(row: dict[str, Any]) -> int:
    return int(row["width"]) * int(row["height"])


def quality(row: dict[str, Any]) -> float | None:
    if (row.get("format") or "") in LOSSLESS:
        return 100.0
    if row.get("format") == "jpeg" and row.get("quality") is not None:
        return float(row["quality"])
    return None


def bytes_per_pixel(row: dict[str, Any]) -> float:
    return int(row["nbytes"]) / max(pixels(row), 1)


def _quality_key(records: Sequence[dict[str, Any]], pool: list[int]) -> tuple[Callable[[int], Any], str] | None:
    known = [quality(records[i]) for i in pool]
    if all(q is not None for q in known):
        return (lambda i: quality(records[i])), "higher quality"
    if len({records[i].get("format") for i in pool}) == 1 and all("nbytes" in records[i] for i in pool):
        return (lambda i: bytes_per_pixel(records[i])), "more bytes per pixel, same format"
    return None


def _describe(step: str, records: Sequence[dict[str, Any]], best: int, other: int) -> str:
    a, b = records[best], records[other]
    if step == "most pixels":
        return f"most pixels ({a['width']}x{a['height']} against {b['width']}x{b['height']})"
    if step == "higher quality":
        return f"higher quality ({quality(a):.0f} against {quality(b):.0f})"
    if step.startswith("more bytes"):
        return f"{step} ({bytes_per_pixel(a):.2f} against {bytes_per_pixel(b):.2f})"
    return step


def choose(records: Sequence[dict[str, Any]]) -> int:
    """The index of the copy to keep among `records` (in input order)."""
    pool = list(range(len(records)))
    for key in _steps(records):
        found = key(pool)
        if found is None:
            continue
        values = {i: found[0](i) for i in pool}
        top = max(values.values())
        pool = [i for i in pool if values[i] == top]
        if len(pool) == 1:
            break
    return pool[0]


def because(records: Sequence[dict[str, Any]], best: int, other: int) -> str:
    """Why `records[best]` is kept over `records[other]`: the first step that tells them apart."""
    for key in _steps(records):
        found = key([best, other])
        if found is None:
            continue
        value, step = found
        if value(best) != value(other):
            return _describe(step, records, best, other)
    return "earlier in the input (the copies tie on pixels, quality and provenance)"


def _steps(records: Sequence[dict[str, Any]]) -> list[Callable]:
    """The rule's steps in order; each gives, for a pool of indexes, (key, name) or None where
    it cannot compare that pool."""
    return [lambda pool: ((lambda i: pixels(records[i])), "most pixels"),
            lambda pool: _quality_key(records, pool),
            lambda pool: ((lambda i: provenance_rank(records[i])), "licence and attribution")]
