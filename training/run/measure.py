"""Metrics during training (--metrics, --metric-ticks): the snapshot just written, scored in process.

Rank 0 scores the G_ema already in memory, on the run's device, with anyres-eval's own Evaluator
(training/eval), kept for the whole run: its real sets are drawn and embedded once, at the start
(so a dataset too small for a metric fails before the first step), and cached on disk where
anyres-eval looks for them, so `anyres-eval RUN` afterwards reuses them. Rows go to
RUN/metrics.jsonl exactly as anyres-eval writes them, and the values into that tick's stats line.

Training must not notice: the evaluation draws its reals from loaders of its own (never the run's
streams), its latents and KID subsets from explicit seeds, and it runs inside a fork of the global
RNGs, so a run with --metrics trains bit for bit like one without, and resume stays exact. It has
no collective: the other ranks simply wait at their next one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from shards.format.reader import Dataset

from ..eval import results
from ..eval.cache import StatsCache, default_dir
from ..eval.features import FeatureNet, load_features
from ..eval.metrics import EvalConfig, Evaluator
from ..eval.names import METRICS
from ..networks.generator import Generator
from .config import TrainConfig

SEED = 0  # anyres-eval's default --seed: the same real sets, so its numbers and these compare


def feature_net(device: torch.device) -> FeatureNet:
    """The offline EfficientNet-Lite0 at its own 224 px (tests put a cheaper network here)."""
    return load_features(None, device)


class RunMetrics:
    def __init__(self, cfg: TrainConfig, dataset: Dataset, patch_dataset: Dataset | None, device: torch.device):
        self.cfg, self.device, self.run_config = cfg, device, cfg.to_dict()
        with torch.random.fork_rng(devices=self._rng_devices()):  # building a network draws initial weights
            features = feature_net(device)
        cache = StatsCache(default_dir())
        # Patch metrics compare with the patch stream's data: --data-hr in stage patch (the paper's
        # high-resolution subset); full metrics with the canvases of --data. One Evaluator per dataset.
        patch_data = patch_dataset if cfg.stage == "patch" and patch_dataset is not None else dataset
        groups: dict[int, tuple[Dataset, list[str]]] = {}
        for name in cfg.metrics:
            data = patch_data if METRICS[name].real == "patch" else dataset
            groups.setdefault(id(data), (data, []))[1].append(name)
        self.evaluators = [Evaluator(data, features, EvalConfig(tuple(names), n=cfg.metric_n, seed=SEED), cache)
                           for data, names in groups.values()]

    def prepare(self, g: Generator) -> None:
        """Draw and embed (or read from the cache) every real set now, before training starts."""
        with torch.random.fork_rng(devices=self._rng_devices()):
            for evaluator in self.evaluators:
                for spec in evaluator.specs(g, self.run_config).values():
                    evaluator.real(spec)

    def _rng_devices(self) -> list:
        return [self.device] if self.device.type == "cuda" else []

    def __call__(self, g: Generator, snapshot: Path, kimg: float) -> dict[str, float]:
        """Score G_ema, append the rows to RUN/metrics.jsonl; the values for the tick's stats line."""
        was_training = g.training
        g.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=self._rng_devices()):
                rows: list[dict[str, Any]] = []
                for evaluator in self.evaluators:
                    rows += evaluator.score(g, self.run_config)
        finally:
            g.train(was_training)
        order = {name: i for i, name in enumerate(self.cfg.metrics)}  # --metrics order, as anyres-eval
        rows = sorted(rows, key=lambda r: order[r["metric"]])  # stable: bins keep theirs
        rows = [{"snapshot": str(snapshot), "kimg": kimg, **r} for r in rows]
        results.append_jsonl(Path(self.cfg.out) / results.METRICS_FILE, rows)
        return {"metric/" + r["metric"] + (f"/{r['bin']}" if "bin" in r else ""): r["value"] for r in rows}
