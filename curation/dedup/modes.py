"""`--dedup`: which stages a run uses, from the mode's name. One place, for the CLI and the
library default alike.

- `crops` (the default, from bench/calibrate_dedup.py): exact copies, near copies by pHash,
  then crops of up to ~6% per side and overlays, checked by alignment.
- `pixels`: exact copies and near copies by pHash (resizes, re-encodes, tone changes).
- `exact`: the same bytes only.
- `off`: nothing is merged (a URL listed twice is still fetched once).

`--exclude` applies in every mode: by pHash, and in `crops` mode by alignment too.
"""

from __future__ import annotations

from .alignment import DEFAULT_THRESHOLD
from .crops import DEFAULT_ALIGN_RADIUS, AlignedDedup
from .exact import ExactDedup
from .exclude import ExcludeNear
from .near import DEFAULT_RADIUS, NearDedup

MODES = ("crops", "pixels", "exact", "off")
DEFAULT_MODE = "crops"


def stages(mode: str = DEFAULT_MODE, radius: int = DEFAULT_RADIUS, align_radius: int = DEFAULT_ALIGN_RADIUS,
           threshold: float = DEFAULT_THRESHOLD, exclude: tuple[str, ...] = ()) -> tuple:
    if mode not in MODES:
        raise ValueError(f"dedup mode must be one of {', '.join(MODES)}, got {mode!r}")
    aligned = AlignedDedup(align_radius, threshold) if mode == "crops" else None
    chosen: list = [ExcludeNear(exclude, radius, aligned)] if exclude else []
    if mode != "off":
        chosen.append(ExactDedup())
    if mode in ("pixels", "crops"):
        chosen.append(NearDedup(radius))
    if aligned is not None:
        chosen.append(aligned)
    return tuple(chosen)
