"""The metrics, by name, and the evaluator that scores one generator with them.

A metric is a statistic (FID, KID, the Laplacian proxy, FID per scale bin) of a real set against
a generated one. The paper's names: `fid-full` (the canvas rendered at S against real canvases
at S; S = R by default), `fid-up` (the canvas at R upsampled to S against the same reals),
`pfid` (patches through the real patches' own T and S). Beyond the paper: `pfid-bins` (pFID per
octave of S/R), KID for each pairing (with the spread of its subsets), `hf-*` (the variance of
the Laplacian of grey images, a stand-in for high-frequency energy), `spectrum-patch` and
`spectrum-patch-up` (power per octave of frequency against real patches', per octave of S/R:
spectrum.py), and the `-up` counterparts of the patch metrics (the window resampled from the
canvas at R).

Real sets are drawn once per evaluator and cached on disk (cache.py); generated sets once per
generator, so `fid-full,kid` renders and embeds each image once. Under torchrun each rank makes a
block of every set's batches and the blocks are gathered on every rank in their one-process order
(ranks.py): every rank computes the same rows, and rank 0 alone reads and writes the cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from plumbing.errors import ConfigError
from shards.format.reader import Dataset

from ..errors import TrainingError
from ..networks.generator import Generator
from .cache import StatsCache
from .features import FeatureNet
from .names import EMBEDDED, METRICS, PUBLISHED_N, FakeKind, MetricSpec, RealKind, Stat, parse_metrics
from .ranks import Ranks, joined
from .sources import RealSpec, batch_count, choose_tile, dataset_fingerprint, fake_set, real_set
from .spectrum import imaging_from, octave_edges
from .stats import frechet_distance, gaussian, kernel_inception_distance


@dataclass(frozen=True)
class EvalConfig:
    metrics: tuple[str, ...]
    n: int = 1000
    seed: int = 0
    size: int | None = None  # S of the full metrics; None: the generator's R
    batch: int = 16
    max_tile: int = 256  # full renders above this side go by tiles, bounding device memory
    s_min: float | None = None  # patch metrics; None: the run's own S_min (at least R and p)
    s_max: float | None = None
    kid_subsets: int = 100

    def __post_init__(self) -> None:
        if self.n < 2 or self.batch < 1 or self.kid_subsets < 1:
            raise ConfigError("n must be at least 2, batch and kid_subsets at least 1")
        try:  # aliases (kid -> kid-full) resolved once, here; unknown names refused
            object.__setattr__(self, "metrics", parse_metrics(",".join(self.metrics)))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def scale_bin(scale: np.ndarray, resolution: int) -> np.ndarray:
    """k for S/R in [2^k, 2^(k+1)); a hair of slack keeps S = 2R in bin 1 despite rounding."""
    return np.floor(np.log2(np.asarray(scale, dtype=np.float64) / resolution) + 1e-9).astype(int)


def bin_label(k: int) -> str:
    return f"[{2 ** k},{2 ** (k + 1)})"


def comparability(stat: Stat, n: int, features: FeatureNet) -> tuple[bool, str]:
    if not features.comparable:
        return False, f"{features.name} features: not comparable with published FID/KID"
    if stat == "hf":
        return False, "a proxy: no published counterpart"
    if stat == "spectrum":
        return False, "power spectra: no published counterpart"
    if stat in ("fid", "fid-bins") and n < PUBLISHED_N:
        return False, f"n={n} < {PUBLISHED_N}: FID is biased upward at small n"
    return True, "Inception features, comparable with published numbers at the same settings"


class Evaluator:
    """Scores generators against one dataset with one feature network; real sets are shared.
    `ranks`: this process's place under torchrun (every rank builds its own Evaluator and calls
    it alike); `progress` counts this rank's share."""

    def __init__(self, dataset: Dataset, features: FeatureNet, config: EvalConfig, cache: StatsCache,
                 progress: Callable[[str, int], Callable[[int], None]] | None = None, ranks: Ranks | None = None):
        self.dataset, self.features, self.config, self.cache = dataset, features, config, cache
        self.ranks = ranks or Ranks()
        self.fingerprint = dataset_fingerprint(dataset)
        self.progress = progress or (lambda label, total: lambda n: None)
        self._reals: dict[RealSpec, dict[str, np.ndarray]] = {}
        self.computed_reals = 0  # real sets drawn and embedded here, not read from the cache

    def specs(self, g: Generator, run_config: dict | None) -> dict[RealKind, RealSpec]:
        """The real sets the chosen metrics need, checked against this generator."""
        cfg, r = self.config, g.cfg.resolution
        step = g.cfg.size_step()
        kinds = {METRICS[m].real for m in cfg.metrics}
        specs = {}
        if "full" in kinds:
            size = cfg.size or r
            if size < r:
                raise TrainingError(f"--size {size} is below the generator's base resolution R = {r}")
            choose_tile(size, step, cfg.max_tile)  # a size the generator cannot render ends here
            specs["full"] = RealSpec("full", size, cfg.n, cfg.seed)
        if "patch" in kinds:
            stream = ((run_config or {}).get("loader") or {}).get("stream") or {}
            p = int(stream.get("size") or r)
            s_min = cfg.s_min if cfg.s_min is not None else max(float(stream.get("s_min") or p), r, p)
            s_max = cfg.s_max if cfg.s_max is not None else stream.get("s_max")
            if s_min < max(r, p):
                raise TrainingError(f"--s-min {s_min:g} is below R = {r} or the patch size p = {p}")
            if s_max is not None and s_max < s_min:
                raise TrainingError(f"--s-max {s_max:g} is below S_min = {s_min:g}")
            specs["patch"] = RealSpec("patch", p, cfg.n, cfg.seed, float(s_min), None if s_max is None else float(s_max),
                                      str(stream.get("distribution") or "uniform"))
        return specs

    def real(self, spec: RealSpec) -> dict[str, np.ndarray]:
        if spec not in self._reals:
            key = {"dataset": self.fingerprint, "real": spec.describe(), "network": self.features.name}
            # Rank 0 decides hit or miss for all: ranks on other nodes may not see its cache folder.
            arrays = self.ranks.first(lambda: self.cache.load(key))
            if arrays is None:
                batch, ranks = self.config.batch, self.ranks
                advance = self.progress(f"real {spec.kind} {spec.size}", ranks.items(spec.n, batch))
                mine = ranks.block(batch_count(spec.n, batch))
                arrays = joined(ranks.each(lambda: real_set(self.dataset, spec, self.features, batch, advance, mine)))
                self.computed_reals += 1
                ranks.first(lambda: self.cache.save(key, arrays))
            self._reals[spec] = arrays
        return self._reals[spec]

    def score(self, g: Generator, run_config: dict | None = None) -> list[dict[str, Any]]:
        cfg, ranks = self.config, self.ranks
        specs = ranks.together(lambda: self.specs(g, run_config))
        fakes: dict[tuple[RealKind, FakeKind], dict[str, np.ndarray]] = {}
        rows = []
        for name in cfg.metrics:
            m = METRICS[name]
            spec = specs[m.real]
            real = self.real(spec)
            if (m.real, m.fake) not in fakes:
                tile = choose_tile(spec.size, g.cfg.size_step(), cfg.max_tile) if m.fake == "full" else spec.size
                advance = self.progress(f"{m.fake} {spec.size}", ranks.items(spec.n, cfg.batch))
                embed = any(METRICS[o].stat in EMBEDDED and (METRICS[o].real, METRICS[o].fake) == (m.real, m.fake)
                            for o in cfg.metrics)
                make = partial(fake_set, g, m.fake, real, spec, self.features, cfg.batch, cfg.seed, tile, advance,
                               ranks.block(batch_count(spec.n, cfg.batch)), embed)
                fakes[m.real, m.fake] = joined(ranks.each(make))
            rows += self._rows(name, m, spec, real, fakes[m.real, m.fake], g.cfg.resolution)
        return rows

    def _rows(self, name: str, m: MetricSpec, spec: RealSpec, real: dict, fake: dict, r: int) -> list[dict]:
        where = {"size": spec.size} if spec.kind == "full" else {"p": spec.size, "s_min": spec.s_min, "s_max": spec.s_max}
        base = {"metric": name, "network": self.features.name, "n": spec.n, "seed": spec.seed, **where}
        comparable, note = comparability(m.stat, spec.n, self.features)
        base.update(comparable=comparable, note=note)
        if m.stat == "fid":
            return [{**base, "value": frechet_distance(gaussian(real["features"]), gaussian(fake["features"]))}]
        if m.stat == "kid":
            k = kernel_inception_distance(real["features"], fake["features"], self.config.kid_subsets, spec.seed)
            return [{**base, "value": k.mean, "std": k.std, "subsets": k.subsets, "subset_size": k.subset_size}]
        if m.stat == "hf":
            real_hf, fake_hf = float(real["laplacian"].mean()), float(fake["laplacian"].mean())
            return [{**base, "value": fake_hf, "real": real_hf, "ratio": fake_hf / real_hf if real_hf > 0 else math.nan}]
        if m.stat == "spectrum":
            return spectrum_rows(base, m, real, fake, spec.size, r)
        bins = scale_bin(real["scale"], r)
        rows = []
        for k in sorted(set(bins.tolist())):
            mask = bins == k
            count = int(mask.sum())
            if count < 2:
                continue  # a Gaussian needs two points; the table says which bins are missing by absence
            fid = frechet_distance(gaussian(real["features"][mask]), gaussian(fake["features"][mask]))
            why = note if not comparable else "pFID per scale bin: no published counterpart"
            rows.append({**base, "n": count, "bin": bin_label(k), "value": fid, "comparable": False, "note": why})
        return rows


def spectrum_rows(base: dict, m: MetricSpec, real: dict, fake: dict, p: int, r: int) -> list[dict]:
    """One row per octave of S/R: mean power per frequency band, real and generated, their ratio
    per band, and as the value the ratio in the top band (1/4 to 1/2 cycle per pixel, the finest
    detail a patch holds). For the upsampled baseline, bands from `imaging_from` up hold its
    interpolator's imaging, not detail."""
    edges = octave_edges(p)
    bins = scale_bin(real["scale"], r)
    rows = []
    for k in sorted(set(bins.tolist())):
        mask = bins == k
        real_power = real["spectrum"][mask].mean(axis=0)
        fake_power = fake["spectrum"][mask].mean(axis=0)
        ratio = [float(f / q) if q > 0 else math.nan for f, q in zip(fake_power, real_power)]
        row = {**base, "n": int(mask.sum()), "bin": bin_label(k), "bands": [[float(a), float(b)] for a, b in
               zip(edges[:-1], edges[1:])], "band_real": real_power.tolist(), "band_fake": fake_power.tolist(),
               "band_ratio": ratio, "value": ratio[-1], "fake": m.fake}
        if m.fake == "patch-lanczos":
            row["imaging_from"] = imaging_from(r, float(real["scale"][mask].min()))
        rows.append(row)
    return rows
