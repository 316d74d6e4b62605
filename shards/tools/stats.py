"""Resolution and provenance summary of a dataset, computed from its index alone."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa

PERCENTILES = (0, 5, 25, 50, 75, 95, 100)
# Buckets by the shorter side: what a multi-size dataset's user asks first is
# "how many images can train patches at 1K, 2K, 4K?"
SIDE_BUCKETS = ((0, 256), (256, 512), (512, 1024), (1024, 2048), (2048, 4096), (4096, None))


def bucket_label(low: int, high: int | None) -> str:
    return f">={low}" if high is None else f"{low}-{high - 1}" if low else f"<{high}"


def summarize(table: pa.Table) -> dict[str, Any]:
    width = table["width"].to_numpy().astype(np.int64)
    height = table["height"].to_numpy().astype(np.int64)
    side = np.minimum(width, height)
    megapixels = width * height / 1e6
    summary: dict[str, Any] = {
        "num_samples": table.num_rows,
        "image_bytes": int(np.sum(table["nbytes"].to_numpy())) if table.num_rows else 0,
        "min_side_percentiles": _percentiles(side),
        "megapixel_percentiles": _percentiles(megapixels, digits=2),
        "min_side_buckets": {
            bucket_label(low, high): int(np.sum((side >= low) & (side < (high or np.inf))))
            for low, high in SIDE_BUCKETS
        },
    }
    for column, label in (
        ("format", "formats"),
        ("mode", "modes"),
        ("source", "sources"),
        ("license", "licenses"),
    ):
        summary[label] = _counts(table[column].to_pylist())
    summary["duplicates_merged"] = int(np.sum(table["dup_count"].to_numpy())) if table.num_rows else 0
    return summary


def _percentiles(values: np.ndarray, digits: int = 0) -> dict[str, float]:
    if values.size == 0:
        return {}
    result = np.percentile(values, PERCENTILES)
    return {f"p{p}": (round(float(v), digits) if digits else int(round(v))) for p, v in zip(PERCENTILES, result)}


def _counts(values: list) -> dict[str, int]:
    counts = Counter("unknown" if v is None else v for v in values)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
