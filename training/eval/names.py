"""Metric names (the paper's, and ours), kept free of torch so the CLI parses flags at once.

A metric is a statistic of a real set (`full`: canvases at S; `patch`: windows at scales S)
against a generated one (`full`, `up`, `patch`, `patch-up`, `patch-lanczos`; sources.py says
how each is made).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RealKind = Literal["full", "patch"]
FakeKind = Literal["full", "up", "patch", "patch-up", "patch-lanczos"]
Stat = Literal["fid", "kid", "hf", "fid-bins", "spectrum"]


@dataclass(frozen=True)
class MetricSpec:
    stat: Stat
    real: RealKind
    fake: FakeKind


METRICS: dict[str, MetricSpec] = {
    "fid-full": MetricSpec("fid", "full", "full"),
    "fid-up": MetricSpec("fid", "full", "up"),
    "pfid": MetricSpec("fid", "patch", "patch"),
    "pfid-up": MetricSpec("fid", "patch", "patch-up"),
    "pfid-bins": MetricSpec("fid-bins", "patch", "patch"),
    "kid-full": MetricSpec("kid", "full", "full"),
    "kid-up": MetricSpec("kid", "full", "up"),
    "kid-patch": MetricSpec("kid", "patch", "patch"),
    "kid-patch-up": MetricSpec("kid", "patch", "patch-up"),
    "hf-full": MetricSpec("hf", "full", "full"),
    "hf-patch": MetricSpec("hf", "patch", "patch"),
    "hf-patch-up": MetricSpec("hf", "patch", "patch-up"),
    # Power per octave of frequency, per octave of S/R, against real patches (eval/spectrum.py):
    # rendered, and the canvas at R brought to S by a Lanczos-3 interpolator.
    "spectrum-patch": MetricSpec("spectrum", "patch", "patch"),
    "spectrum-patch-up": MetricSpec("spectrum", "patch", "patch-lanczos"),
}
EMBEDDED: frozenset[Stat] = frozenset({"fid", "kid", "fid-bins"})  # the statistics that need features
ALIASES = {"kid": "kid-full", "fid": "fid-full"}
PUBLISHED_N = 50_000  # FID is biased upward at small n: published FIDs (and the paper's) use 50k


def parse_metrics(text: str) -> tuple[str, ...]:
    names = [ALIASES.get(m.strip(), m.strip()) for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metric {', '.join(unknown) or '(none given)'}; known: "
                         f"{', '.join(list(METRICS) + list(ALIASES))}")
    return tuple(dict.fromkeys(names))  # in order, once each


