"""The training loop: data streams, ranks, ticks, snapshots and exact resume.

One process per device under torchrun (gloo on CPU, nccl on GPU), or a single plain process.
Every rank runs the same number of steps; which stream a step draws from is decided by a
generator seeded with (seed, step), identical on all ranks, so the ranks always run the same
kind of step and their all-reduces pair up.

Resume is exact on CPU: the checkpoint holds every rank's RNG states, the latent generator, and
for each data stream its epoch and the number of batches taken from it. The loader's own
randomness is a pure function of (seed, epoch, rank, worker), so replaying that many batches of
that epoch puts it back where it was; the cost is re-reading at most one epoch.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from shards.atomic import atomic_write

from . import checkpoint, report
from .errors import TrainingError
from .pipeline import LoaderConfig, PatchLoader
from .presets import TrainConfig
from .sampler import StreamConfig
from .trainer import Trainer
from .validate import check_resume, check_run, teacher_state

STAT_KEYS = ("loss_G", "loss_D", "D_real", "D_fake", "R1", "teacher")
GRID_SEED = 1234


class DataStream:
    """A loader's batches, forever, with a position that a checkpoint can hold."""

    def __init__(self, loader: PatchLoader):
        self.loader, self.epoch, self.taken = loader, 0, 0
        self.past_counts: Counter[str] = Counter()  # loader counters of finished epochs
        self._it: Iterator[dict] | None = None

    def next(self) -> dict:
        while True:
            if self._it is None:
                self.loader.set_epoch(self.epoch)
                self._it = iter(self.loader)
                for _ in range(self.taken):  # replay to the saved position
                    next(self._it)
            try:
                batch = next(self._it)
            except StopIteration:
                self.past_counts.update(self.loader.stats.totals())
                self.epoch, self.taken, self._it = self.epoch + 1, 0, None
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

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "taken": self.taken, "past_counts": dict(self.past_counts)}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.taken = int(state["epoch"]), int(state["taken"])
        self.past_counts, self._it = Counter(state["past_counts"]), None


def init_distributed() -> tuple[int, int, torch.device, bool]:
    """(rank, world, device, whether we started the process group)."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
        return dist.get_rank(), world, device, True
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), device, False
    return 0, 1, device, False


def gather(obj, world: int) -> list:
    if world == 1:
        return [obj]
    out: list = [None] * world
    dist.all_gather_object(out, obj)
    return out


def make_streams(cfg: TrainConfig, per_rank: int) -> dict[str, DataStream]:
    def loader(stream: StreamConfig, salt: int) -> DataStream:
        return DataStream(PatchLoader(LoaderConfig(cfg.data, stream, batch_size=per_rank, dtype="float",
                                                   seed=cfg.seed * 2 + salt, shuffle_buffer=cfg.shuffle_buffer,
                                                   shuffle_initial=min(64, cfg.shuffle_buffer),
                                                   num_workers=cfg.workers)))

    streams = {"global": loader(StreamConfig("global", size=cfg.resolution), 0)}
    if cfg.stage == "patch":
        streams["patch"] = loader(StreamConfig("patch", size=cfg.patch_size, s_min=max(cfg.resolution, cfg.patch_size),
                                               s_max=cfg.s_max, distribution=cfg.distribution), 1)
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
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.rank, self.world, self.device, self.owns_group = init_distributed()
        if cfg.batch % self.world:
            raise TrainingError(f"batch {cfg.batch} does not split evenly over {self.world} processes")
        self.per_rank = cfg.batch // self.world
        self.out = Path(cfg.out)
        check_run(cfg, self.world)  # user errors end here, before any network is built
        self.trainer = Trainer(cfg, self.device, self.world)
        self.streams = make_streams(cfg, self.per_rank)
        self.latents = torch.Generator().manual_seed(cfg.seed * 10007 + self.rank)
        self.step = 0
        if cfg.resume:
            self._resume()
        elif cfg.stage == "patch":
            teacher = teacher_state(cfg)
            self.trainer.load_state_dict(teacher["trainer"], networks_only=True)
            self.trainer.set_teacher(teacher["trainer"]["G_ema"])
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write(self.out / "config.json", _json(cfg.to_dict()))
            if not cfg.resume:
                (self.out / "stats.jsonl").unlink(missing_ok=True)

    def _resume(self) -> None:
        state = check_resume(self.cfg, self.world)
        self.trainer.load_state_dict(state["trainer"])
        if state.get("teacher") is not None:
            self.trainer.set_teacher(state["teacher"])
        for name, s in state["streams"].items():
            self.streams[name].load_state_dict(s)
        checkpoint.set_rng_state(state["rng"][self.rank], self.latents)
        self.step = int(state["step"])
        if self.rank == 0:
            report.truncate_stats(self.out / "stats.jsonl", self.step)

    def snapshot(self) -> None:
        t = self.trainer
        rngs = gather(checkpoint.rng_state(self.latents), self.world)
        digests = gather(weights_digest(t), self.world)
        if self.rank != 0:
            return
        state = {"trainer": t.state_dict(), "step": self.step, "config": self.cfg.to_dict(), "rng": rngs,
                 "streams": {k: s.state_dict() for k, s in self.streams.items()},
                 "teacher": t.teacher.state_dict() if t.teacher is not None else None}
        checkpoint.save(self.out / checkpoint.CHECKPOINT, state)
        z = torch.randn(4, self.cfg.g.z_dim, generator=torch.Generator().manual_seed(GRID_SEED)).to(self.device)
        report.write_png(self.out / f"samples-{self.step:07d}.png", report.sample_grid(t.G_ema, z, self.cfg.patch_size))
        report.plot_curves(report.read_stats(self.out / "stats.jsonl"), self.out / "curves.png")
        if max(digests) != min(digests):
            raise RuntimeError(f"ranks disagree on the weights: {digests}")

    def tick(self, sums: dict, counts: dict, steps: int, patch_steps: int, seconds: float, tick: int) -> dict:
        vector = torch.tensor([sums.get(k, 0.0) for k in STAT_KEYS] + [counts.get(k, 0) for k in STAT_KEYS],
                              dtype=torch.float64)
        if self.world > 1:
            dist.all_reduce(vector)
        n = len(STAT_KEYS)
        images = steps * self.cfg.batch
        loader_counts: Counter[str] = Counter()
        for c in gather({k: dict(s.counts()) for k, s in self.streams.items()}, self.world):
            for name, counter in c.items():
                loader_counts.update({f"{name}/{k}": v for k, v in counter.items()})
        record = {"tick": tick, "step": self.step, "kimg": self.step * self.cfg.batch / 1000,
                  "sec_per_kimg": seconds / max(images, 1) * 1000, "images_per_sec": images / max(seconds, 1e-9),
                  "patch_fraction": patch_steps / max(steps, 1), "loader": dict(sorted(loader_counts.items()))}
        for i, key in enumerate(STAT_KEYS):
            record[key] = float(vector[i] / vector[n + i]) if vector[n + i] > 0 else None
        if self.rank == 0:
            report.append_stats(self.out / "stats.jsonl", record)
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
            stats = self.trainer.step(batch["image"], batch["transform"], batch["scale"], z_d, z_g, patch, cfg.batch)
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            self.step += 1
            steps += 1
            patch_steps += patch
            if self.step % tick_steps == 0 or self.step == total:
                tick = math.ceil(self.step / tick_steps)
                record = self.tick(sums, counts, steps, patch_steps, time.perf_counter() - started, tick)
                if tick % cfg.snap_ticks == 0 or self.step == total:
                    self.snapshot()
                sums, counts, steps, patch_steps = {}, {}, 0, 0
                started = time.perf_counter()
        return record

    def close(self) -> None:
        for stream in self.streams.values():
            stream.close()  # finish readers now, not in finalizers at interpreter exit
        if self.owns_group and dist.is_initialized():
            # Rank 0 may still be writing the last snapshot; tearing the group down under it
            # aborts the other process ("terminate called without an active exception").
            dist.barrier()
            dist.destroy_process_group()


def train(cfg: TrainConfig) -> dict:
    """Train to cfg.kimg; returns the last tick's stats (rank 0 writes the run folder)."""
    run = Run(cfg)
    try:
        return run.run()
    finally:
        run.close()


def _json(d: dict) -> bytes:
    return (json.dumps(d, indent=2, default=str) + "\n").encode()
