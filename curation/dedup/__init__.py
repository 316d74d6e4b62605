"""Deduplication on metadata: repeated keys and exact copies (`exact`), near copies and
exclusion of another dataset's neighbours (`near`, over the Hamming search in `hamming`), and
the merge plan they produce together (`merge`)."""

from .exact import ExactDedup, provenance_rank, repeated_keys
from .merge import DedupStage, Merge, MergePlan, Place, places, plan_merges
from .near import DEFAULT_RADIUS, ExcludeNear, NearDedup

__all__ = ["DEFAULT_RADIUS", "DedupStage", "ExactDedup", "ExcludeNear", "Merge", "MergePlan", "NearDedup", "Place",
           "places", "plan_merges", "provenance_rank", "repeated_keys"]
