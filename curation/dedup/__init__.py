"""Deduplication on metadata: repeated keys and exact copies (`exact`), near copies by pHash
(`near`, over the Hamming search in `hamming`), crops and overlays by stored signatures and
alignment (`crops`, `image_signature`, `alignment`), exclusion of another dataset's copies
(`exclude`), the one keeper rule (`keeper`), and the merge plan they produce together (`merge`)."""

from .crops import DEFAULT_ALIGN_RADIUS, AlignedDedup
from .exact import ExactDedup, repeated_keys
from .exclude import ExcludeNear
from .keeper import because, choose, provenance_rank
from .merge import DedupStage, Merge, MergePlan, Place, places, plan_merges
from .modes import DEFAULT_MODE, MODES, stages
from .near import DEFAULT_RADIUS, NearDedup

__all__ = ["DEFAULT_ALIGN_RADIUS", "DEFAULT_MODE", "DEFAULT_RADIUS", "MODES", "stages", "AlignedDedup", "DedupStage", "because", "choose", "ExactDedup", "ExcludeNear", "Merge", "MergePlan", "NearDedup", "Place",
           "places", "plan_merges", "provenance_rank", "repeated_keys"]
