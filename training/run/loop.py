"""The training loop: data streams, ranks, ticks, snapshots and exact resume.

One process per device under torchrun (gloo on CPU, nccl on GPU), or a single plain process.
Every rank runs the same number of steps; which stream a step draws from is decided by a
generator seeded with (seed, step), identical on all ranks, so the ranks always run the same
kind of step and their all-reduces pair up.

Resume is exact on CPU: the checkpoint holds every rank's RNG states, the latent generator, and
for each data stream its epoch and the number of batches taken from it. The loader's own
randomness is a pure function of (seed, epoch, rank, worker), so replaying that many batches of
that epoch puts it back where it was; the cost is re-reading at most one epoch.

With --metrics, rank 0 scores each metric tick's snapshot in process (measure.py), with loaders
and seeds of its own and in a fork of the RNGs: training, and its resume, are as without.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from plumbing.atomic import atomic_write
from shards.format.reader import Dataset

from .. import checkpoint, dist
from ..errors import TrainingError
from ..loader.batch import Batch
from ..loader.pipeline import PatchLoader
from ..loader.sampler import StreamConfig
from . import progress, stats_log
from .config import TrainConfig
from .grids import panorama_grid, sample_grid
from .trainer import Trainer
from .validate import Start, check_run

STAT_KEYS = ("loss_G", "loss_D", "D_real", "D_fake", "R1", "teacher", "aug_p")  # tick means over steps


class DataStream:
    """A loader's batches, forever, with a position that a checkpoint can hold: the loader's
    epoch (it owns it; this only asks) and the batches taken from it."""

    def __init__(self, loader: PatchLoader):
        self.loader, self.taken = loader, 0
        self.past_counts: Counter[str] = Counter()  # loader counters of finished epochs
        self._it: Iterator[Batch] | None = None  # the pass under way

    @property
    def epoch(self) -> int:
        return self.loader.epoch

    def next(self) -> Batch:
        while True:
            if self._it is None:
                self._it = iter(self.loader)
                for _ in range(self.taken):  # replay to the saved position
                    next(self._it)
            try:
                batch = next(self._it)
            except StopIteration:
                self.past_counts.update(self.loader.stats.totals())
                self.taken, self._it = 0, None
                continue
            self.taken += 1
            return batch

    def counts(self) -> Counter[str]:
        return self.past_counts + Counter(self.loader.stats.totals() if self._it is not None else {})

    def close(self) -> None:
        if self._it is not None:
            self.past_counts.update(self.loader.stats.totals())
            getattr(self._it, "close", lambda: None)()
            self._it = None
            self.loader.set_epoch(self.loader.epoch)  # an unfinished pass is where a reopen starts

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "taken": self.taken, "past_counts": dict(self.past_counts)}

    def load_state_dict(self, state: dict) -> None:
        self.close()
        self.loader.set_epoch(int(state["epoch"]))
        self.taken, self.past_counts = int(state["taken"]), Counter(state["past_counts"])


def make_streams(cfg: TrainConfig, world: dist.World, dataset: Dataset,
                 patch_dataset: Dataset | None = None) -> dict[str, DataStream]:
    """Stage 1 reads whole canvases at R from cfg.data; stage 2 adds the config's patch stream,
    from cfg.data_hr when given (`patch_dataset`, opened), else from the same dataset. Each rank
    loads its share of the global batch, each stream has its own seed, and the global stream
    flips like the patch stream (--mirror): a mirrored canvas is a mirrored image."""
    def loader(stream: StreamConfig, salt: int, data: str, opened: Dataset | None) -> DataStream:
        config = replace(cfg.loader, data=data, stream=stream, batch_size=cfg.batch // world.size,
                         seed=cfg.seed * 2 + salt)
        return DataStream(PatchLoader(config, world.rank, world.size, opened))

    if cfg.stage == "global-360":  # frames anywhere on each panorama's turn, across its seam too
        whole = StreamConfig("global-360", size=cfg.resolution, mirror=cfg.loader.stream.mirror, fov=cfg.g.fov)
    else:
        whole = StreamConfig("global", size=cfg.resolution, mirror=cfg.loader.stream.mirror)
    streams = {"global": loader(whole, 0, cfg.data, dataset)}
    if cfg.stage == "patch":
        # Without an opened --data-hr dataset (a library caller), the loader opens cfg.data_hr itself.
        opened = dataset if cfg.data_hr is None else patch_dataset
        streams["patch"] = loader(cfg.loader.stream, 1, cfg.patch_data, opened)
    return streams


def uses_patch(cfg: TrainConfig, step: int) -> bool:
    if cfg.stage != "patch":
        return False
    return bool(np.random.default_rng([cfg.seed, step, 17]).random() < cfg.patch_prob)


@torch.no_grad()
def weights_digest(trainer: Trainer) -> float:
    """A cheap fingerprint of all weights, to check that the ranks agree."""
    return float(sum(p.double().sum() + p.double().square().sum() for p in trainer.G.parameters())
                 + sum(p.double().sum() for p in trainer.D.parameters()))


class Run:
    def __init__(self, cfg: TrainConfig, world: dist.World, start: Start):
        self.cfg, self.world = cfg, world
        self.rank, self.device = world.rank, world.device
        self.dataset = start.dataset  # opened once: the report's dataset panel shows it too
        self.per_rank = cfg.batch // world.size
        self.out = Path(cfg.out)
        self.trainer = Trainer(cfg, self.device, world.size)
        self.streams = make_streams(cfg, world, start.dataset, start.patch_dataset)
        self.metrics = None
        if cfg.metrics:
            error = None
            if self.rank == 0:
                from .measure import RunMetrics  # the eval stack (torchmetrics, EfficientNet) only when asked

                try:  # real sets now: a metric the data cannot serve ends the run before its first step
                    self.metrics = RunMetrics(cfg, start.dataset, start.patch_dataset, self.device)
                    self.metrics.prepare(self.trainer.G_ema)
                except TrainingError as exc:
                    error = str(exc)
            # Rank 0's user error stops every rank, rather than leaving the others at their first all-reduce.
            error = dist.gather(error, world.size)[0]
            if error is not None:
                raise TrainingError(error)
        self.latents = torch.Generator().manual_seed(cfg.seed * 10007 + self.rank)
        self.step = 0
        if cfg.resume:
            self._resume(start.state)
        elif cfg.stage == "patch":
            self.trainer.load_state_dict(start.state["trainer"], networks_only=True)
            self._set_teacher(start.state["trainer"]["G_ema"])
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write(self.out / "config.json", _json(cfg.to_dict()))
            if not cfg.resume:
                (self.out / "stats.jsonl").unlink(missing_ok=True)
        self.board = progress.Board(self.out) if self.rank == 0 else None
        if self.board is not None and not self.board.enabled:
            print("anyres-train: no TensorBoard logs (pip install tensorboard to have them)", flush=True)

    def _set_teacher(self, weights: dict) -> None:
        self.trainer.set_teacher(checkpoint.build_generator(self.cfg.g, weights))

    def _resume(self, state: dict) -> None:
        self.trainer.load_state_dict(state["trainer"])
        if state.get("teacher") is not None:
            self._set_teacher(state["teacher"])
        for name, s in state["streams"].items():
            self.streams[name].load_state_dict(s)
        checkpoint.set_rng_state(state["rng"][self.rank], self.latents)
        self.step = int(state["step"])
        if self.rank == 0:
            stats_log.truncate_stats(self.out / "stats.jsonl", self.step)

    def snapshot(self) -> Path | None:
        """Save checkpoint.pt and a kept network snapshot; rank 0 returns the snapshot's path."""
        t, size = self.trainer, self.world.size
        rngs = dist.gather(checkpoint.rng_state(self.latents), size)
        digests = dist.gather(weights_digest(t), size)
        # Every rank checks, so that all of them stop together.
        if not all(math.isfinite(d) for d in digests):
            raise TrainingError(f"training diverged at step {self.step}: the weights are no longer finite "
                                "(try lower learning rates)")
        if max(digests) != min(digests):
            raise RuntimeError(f"ranks disagree on the weights: {digests}")
        if self.rank != 0:
            return None
        state = {"trainer": t.state_dict(), "step": self.step, "config": self.cfg.to_dict(), "rng": rngs,
                 "streams": {k: s.state_dict() for k, s in self.streams.items()},
                 "teacher": t.teacher.state_dict() if t.teacher is not None else None}
        checkpoint.save(self.out / checkpoint.CHECKPOINT, state)
        # Kept, unlike checkpoint.pt (replaced at every save): one per snapshot, named by kimg.
        name = checkpoint.snapshot_name(self.step * self.cfg.batch)
        checkpoint.save(self.out / name, checkpoint.snapshot_state(state))
        grid = panorama_grid(t.G_ema) if self.cfg.stage == "global-360" else sample_grid(t.G_ema, self.cfg.patch_size)
        stats_log.write_png(self.out / f"samples-{self.step:07d}.png", grid)
        self.board.image("samples", grid, self.step * self.cfg.batch / 1000)
        stats_log.plot_curves(stats_log.read_stats(self.out / "stats.jsonl"), self.out / "curves.png")
        return self.out / name

    def tick(self, sums: dict, counts: dict, steps: int, patch_steps: int, seconds: float, tick: int) -> dict:
        vector = torch.tensor([sums.get(k, 0.0) for k in STAT_KEYS] + [counts.get(k, 0) for k in STAT_KEYS],
                              dtype=torch.float64)
        dist.sum_(vector, self.world.size)
        n = len(STAT_KEYS)
        images = steps * self.cfg.batch
        loader_counts: Counter[str] = Counter()
        for c in dist.gather({k: dict(s.counts()) for k, s in self.streams.items()}, self.world.size):
            for name, counter in c.items():
                loader_counts.update({f"{name}/{k}": v for k, v in counter.items()})
        record = {"tick": tick, "step": self.step, "kimg": self.step * self.cfg.batch / 1000,
                  "sec_per_kimg": seconds / max(images, 1) * 1000, "images_per_sec": images / max(seconds, 1e-9),
                  "patch_fraction": patch_steps / max(steps, 1), "loader": dict(sorted(loader_counts.items()))}
        for i, key in enumerate(STAT_KEYS):
            record[key] = float(vector[i] / vector[n + i]) if vector[n + i] > 0 else None
        if self.rank == 0:
            stats_log.append_stats(self.out / "stats.jsonl", record)
        return record

    def run(self) -> dict:
        cfg = self.cfg
        total = math.ceil(cfg.kimg * 1000 / cfg.batch)
        tick_steps = max(1, round(cfg.tick_kimg * 1000 / cfg.batch))
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        steps = patch_steps = 0
        started, record = time.perf_counter(), {}
        while self.step < total:
            patch = uses_patch(cfg, self.step)
            batch = self.streams["patch" if patch else "global"].next()
            z_d = torch.randn(self.per_rank, cfg.g.z_dim, generator=self.latents)
            z_g = torch.randn(self.per_rank, cfg.g.z_dim, generator=self.latents)
            # Stage 2's teacher term is on every step: over the window on a patch step, over the whole
            # frame on a global one.
            stats = self.trainer.step(batch.image, batch.transform, batch.scale, z_d, z_g, cfg.stage == "patch",
                                      cfg.batch)
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            self.step += 1
            steps += 1
            patch_steps += patch
            if self.step % tick_steps == 0 or self.step == total:
                tick = math.ceil(self.step / tick_steps)
                record = self.tick(sums, counts, steps, patch_steps, time.perf_counter() - started, tick)
                last = self.step == total
                # Every rank decides alike (snapshot() gathers): a metric tick writes a snapshot too.
                measure = bool(cfg.metrics) and (tick % cfg.metric_interval == 0 or last)
                if tick % cfg.snap_ticks == 0 or last or measure:
                    snapshot = self.snapshot()
                    if measure and self.metrics is not None:  # rank 0; the others go on to their next collective
                        values = self.metrics(self.trainer.G_ema, snapshot, record["kimg"])
                        stats_log.update_last_stats(self.out / "stats.jsonl", self.step, values)
                        record.update(values)
                if self.board is not None:  # rank 0
                    self.board.scalars(record)
                    print(progress.tick_line(record, total * cfg.batch / 1000), flush=True)
                sums, counts, steps, patch_steps = {}, {}, 0, 0
                started = time.perf_counter()
        return record

    def close(self) -> None:
        if getattr(self, "board", None) is not None:
            self.board.close()
        for stream in self.streams.values():
            stream.close()  # finish readers now, not in finalizers at interpreter exit
        dist.finish(self.world)


@contextmanager
def prepared(cfg: TrainConfig) -> Iterator[Run]:
    """A run checked and built, closed (readers finished, the process group left) however it ends."""
    world = dist.start()
    start = check_run(cfg, world.size)  # user errors end here, before any network is built
    run = Run(cfg, world, start)
    try:
        yield run
    finally:
        run.close()


def train(cfg: TrainConfig) -> dict:
    """Train to cfg.kimg; returns the last tick's stats (rank 0 writes the run folder). The run
    report is the command's to write (anyres-train train)."""
    with prepared(cfg) as run:
        return run.run()


def _json(d: dict) -> bytes:
    return (json.dumps(d, indent=2, default=str) + "\n").encode()
