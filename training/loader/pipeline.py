"""The streaming loader: shards -> samples -> patches -> shuffled batches, on every rank and worker.

Distribution. Shards (or, when there are fewer shards than workers, equal slices of shards) form
a list of V "parts". For epoch e, round k of an infinite sequence is a permutation of the parts
seeded by (seed, e, k), the same on every process. Reader g of the G = world_size * num_workers
readers takes positions g, g + G, g + 2G, ... of that sequence: within each round the parts are
split across nodes and workers without overlap, and rounds go on as long as the epoch needs, so
any number of shards, ranks and workers works. Each reader takes a fixed quota of patches (whole
batches, split evenly across the rank's workers) and stops, so every rank sees the same number
of batches per epoch whatever the shard sizes. When the parts hold equal numbers of samples,
their count is a multiple of G and the epoch is one patch per sample, an epoch reads every
sample exactly once across all readers; otherwise coverage evens out over epochs. `resampled=False` reads each part once instead.

Reading goes through `shards.Location` (local, http(s), fsspec), tar parsing through the dataset
reader's `shards.format.tario` (the strict shard contract that verify checks), shuffling through
WebDataset's shuffle buffer. A bad sample or shard is counted by reason and skipped; the counts
travel with every batch so training can log them.
"""

from __future__ import annotations

import itertools
import math
import os
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from plumbing.errors import ConfigError, DatasetError
from shards.format.index import IndexFilter
from shards.format.reader import Dataset
from shards.format.schema import FormatError, SampleMeta

from .batch import Batch, LoaderStats, collate
from .decode_cache import DecodeCache
from .sampler import Patch, Skip, StreamConfig, render_sample


@dataclass(frozen=True)
class LoaderConfig:
    data: str
    stream: StreamConfig = field(default_factory=StreamConfig)
    batch_size: int = 32
    epoch_patches: int | None = None  # per epoch, all ranks together; default: usable samples x per_image
    shuffle_buffer: int = 512  # patches; p=256 RGB is 192 KiB each, so 512 hold ~100 MB per worker
    shuffle_initial: int = 128  # patches gathered before the first batch leaves (start-up latency)
    seed: int = 0
    resampled: bool = True  # False: one pass over the data, each part read once, no quota
    num_workers: int = 0
    pin_memory: bool = False  # page-locked batches for faster host-to-GPU copies
    dtype: Literal["uint8", "float"] = "uint8"  # float: [-1, 1]
    select: IndexFilter | None = None  # index-driven restriction, applied without opening tars
    weight: Literal["none", "area"] = "none"  # area: patches per image in proportion to its pixels
    errors: Literal["skip", "raise"] = "skip"
    # Decodes kept across epochs, per reader (decode_cache.py): a small dataset is decoded once.
    decode_cache_mb: int = 256

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.shuffle_buffer < 0 or self.num_workers < 0 or self.decode_cache_mb < 0:
            raise ConfigError("batch_size must be >= 1, shuffle_buffer, num_workers and decode_cache_mb >= 0")
        if self.dtype not in ("uint8", "float") or self.errors not in ("skip", "raise"):
            raise ConfigError(f"bad dtype {self.dtype!r} or errors {self.errors!r}")
        if self.weight not in ("none", "area"):
            raise ConfigError(f"weight must be 'none' or 'area', got {self.weight!r}")


@dataclass(frozen=True)
class Part:
    """A shard, or slice `index` of `count` of its samples when shards are fewer than readers."""

    shard: str
    index: int = 0
    count: int = 1


def make_parts(shards: list[str], readers: int) -> list[Part]:
    if not shards:
        raise DatasetError("no shard to read")
    slices = math.ceil(readers / len(shards))
    return [Part(s, i, slices) for s in shards for i in range(slices)]


def reader_parts(parts: list[Part], seed: int, epoch: int, reader: int, readers: int,
                 resampled: bool) -> Iterator[Part]:
    """Reader `reader`'s share of the sequence of seeded permutations of the parts."""
    position = reader
    while True:
        round_, at = divmod(position, len(parts))
        if round_ and not resampled:
            return
        order = np.random.default_rng([seed, epoch, round_]).permutation(len(parts)) if resampled else range(len(parts))
        yield parts[order[at]]
        position += readers


def distributed_info(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """This process's rank and the world size: given, else torch.distributed, else torchrun's env."""
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class PatchStream(IterableDataset):
    """One rank's stream of batches; each DataLoader worker iterates its own share. `epoch` is
    the pass it makes, set by its PatchLoader (the epoch's owner) before each pass, and copied
    into the workers then; `dataset`, when given, is the opened `config.data` (its index already
    read by whoever checked it)."""

    def __init__(self, config: LoaderConfig, rank: int | None = None, world_size: int | None = None,
                 dataset: Dataset | None = None):
        super().__init__()
        self.config = config
        self.rank, self.world_size = distributed_info(rank, world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} outside world of {self.world_size}")
        self.dataset = Dataset(config.data) if dataset is None else dataset
        index = self.dataset.index
        if config.select is not None:
            index = config.select.apply(index)
        if index.num_rows == 0:
            why = f"passes the selection {config.select.describe()}" if config.select else "in its index"
            raise DatasetError(f"no sample of {config.data} {why}")
        # Keys to keep only when a selection is given: otherwise every sample is a candidate.
        self.keys = frozenset(index["key"].to_pylist()) if config.select is not None else None
        shard_names = sorted(set(index["shard"].to_pylist()))
        self.readers = self.world_size * max(1, config.num_workers)
        self.parts = make_parts(shard_names, self.readers)
        widths, heights = index["width"].to_numpy(), index["height"].to_numpy()
        usable = np.minimum(widths, heights) >= config.stream.usable_side()
        self.usable = int(usable.sum())
        # Expected patches per image relative to the mean over usable images, so the epoch keeps
        # its length: a 24 MP photo holds more distinct patches than a 2 MP one.
        self.weights: dict[str, float] | None = None
        if config.weight == "area" and self.usable:
            area = widths.astype(np.float64) * heights
            self.weights = dict(zip(index["key"].to_pylist(), (area / area[usable].mean()).tolist()))
        self.epoch = 0  # PatchLoader's to set

    def batches_per_rank(self) -> int:
        total = self.config.epoch_patches
        if total is None:
            total = self.usable * self.config.stream.per_image
        return max(1, total // (self.world_size * self.config.batch_size))

    def __len__(self) -> int:
        return self.batches_per_rank()

    def __iter__(self) -> Iterator[Batch]:
        return self._batches(self.epoch)  # the epoch is read now, when the iteration starts

    def _batches(self, epoch: int) -> Iterator[Batch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        reader = self.rank * workers + worker
        readers = self.world_size * workers
        if readers != self.readers:  # a loader built for another worker count: re-slice
            self.parts, self.readers = make_parts(sorted({p.shard for p in self.parts}), readers), readers
        cfg = self.config
        counts: Counter[str] = Counter()
        seeds = np.random.SeedSequence([cfg.seed, epoch, self.rank, worker]).generate_state(2)
        rng = np.random.default_rng(seeds[0])
        parts = reader_parts(self.parts, cfg.seed, epoch, reader, readers, cfg.resampled)
        patches = self._patches(parts, counts, rng)
        if cfg.resampled:
            rank_batches = self.batches_per_rank()
            mine = rank_batches // workers + (worker < rank_batches % workers)
            patches = itertools.islice(patches, mine * cfg.batch_size)
        if cfg.shuffle_buffer > 1:
            shuffler = random.Random(int(seeds[1]))
            initial = min(cfg.shuffle_initial, cfg.shuffle_buffer)
            patches = wds.shuffle(cfg.shuffle_buffer, initial=initial, rng=shuffler)(patches)
        for chunk in _chunks(patches, cfg.batch_size):
            yield collate(chunk, cfg.dtype, counts, reader)

    def _patches(self, parts: Iterable[Part], counts: Counter, rng: np.random.Generator) -> Iterator[Patch]:
        dry = 0  # parts in a row that gave no patch: a dataset with nothing usable must not spin
        for part in parts:
            made = 0
            for meta, data in self._samples(part, counts):
                stream = self._stream_for(meta.key, rng)
                if stream is None:
                    counts["weighted-out"] += 1
                    continue
                try:
                    batch = render_sample(meta, data, stream, rng, self._cache())
                except Skip as exc:
                    # Unusable for this stream, not broken: counted, never raised.
                    if self.config.errors == "raise" and exc.reason not in ("too-small", "not-panorama"):
                        raise
                    counts[exc.reason] += 1
                    continue
                counts["images"] += 1
                counts["patches"] += len(batch)
                made += len(batch)
                yield from batch
            dry = 0 if made else dry + 1
            if dry > 2 * len(self.parts) + 2:
                raise DatasetError(f"no usable sample in {dry} shard reads of {self.config.data}: {dict(counts)}")

    def _cache(self) -> DecodeCache | None:
        """This reader's decode cache, made in the process that reads (a worker's own copy)."""
        if self.config.decode_cache_mb == 0:
            return None
        if getattr(self, "_decode_cache", None) is None:
            self._decode_cache = DecodeCache(self.config.decode_cache_mb << 20)
        return self._decode_cache

    def _stream_for(self, key: str, rng: np.random.Generator) -> StreamConfig | None:
        stream = self.config.stream
        if self.weights is None:
            return stream
        expected = stream.per_image * self.weights.get(key, 1.0)
        count = int(expected) + int(rng.random() < expected - int(expected))  # unbiased rounding
        return replace(stream, patches_per_image=count) if count else None

    def _samples(self, part: Part, counts: Counter) -> Iterator[tuple[SampleMeta, bytes]]:
        # The shards reader enforces the strict shard contract (plain ustar members, sizes
        # within the manifest's, KEY.EXT then KEY.json) that verify checks: a dataset made by
        # someone else cannot feed the loader anything verify would not pass.
        failed = []

        def on_error(exc: Exception) -> None:
            # A damaged tar loses the rest of its shard: count that once, and go on with the next.
            if self.config.errors == "raise":
                raise exc
            if not failed:
                counts["shard-error"] += 1
                failed.append(exc)

        def on_skip(exc: FormatError) -> None:
            if self.config.errors == "raise":
                raise exc
            counts["bad-metadata"] += 1

        samples = self.dataset.iter_samples(shards=[part.shard], on_error=on_error, on_skip=on_skip)
        for i, sample in enumerate(samples):
            if i % part.count != part.index:
                continue
            if self.keys is not None and sample.meta.key not in self.keys:
                counts["not-selected"] += 1
                continue
            yield sample.meta, sample.data


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    # One batch of lookahead: the last batch leaves only once the stream has ended, so the
    # counts it carries include every sample skipped after its last patch.
    it = iter(items)
    chunk = list(itertools.islice(it, size))
    while chunk:
        following = list(itertools.islice(it, size))
        yield chunk
        chunk = following


class PatchLoader:
    """A DataLoader over a PatchStream, and the owner of the epoch: each pass reads the next one.

    `epoch` is the pass under way, or the next to start when none is: a finished pass moves it
    on, and so does starting a pass while another is unfinished. A position saved mid-pass is
    that epoch and its batches taken: `set_epoch` makes the next pass that epoch again, for the
    caller to replay (run/loop.py's DataStream)."""

    def __init__(self, config: LoaderConfig, rank: int | None = None, world_size: int | None = None,
                 dataset: Dataset | None = None):
        self.config = config
        self.stream = PatchStream(config, rank, world_size, dataset)
        self.stats = LoaderStats()
        self.epoch, self._under_way = 0, False
        # Workers are not persistent: each epoch starts them afresh with the new epoch's seeds.
        self.loader = DataLoader(self.stream, batch_size=None, num_workers=config.num_workers,
                                 persistent_workers=False, pin_memory=config.pin_memory,
                                 prefetch_factor=4 if config.num_workers else None)

    def __len__(self) -> int:
        return len(self.stream)

    def set_epoch(self, epoch: int) -> None:
        """The next pass reads `epoch`; a pass under way is given up."""
        self.epoch, self._under_way = epoch, False

    def __iter__(self) -> Iterator[Batch]:
        if self._under_way:  # the last pass was left unfinished: this one is the next epoch
            self.epoch += 1
        self.stats = LoaderStats()
        self.stream.epoch, self._under_way = self.epoch, True
        # Workers copy the stream, and a single process starts iterating it, when the DataLoader's
        # iterator is made: the stream's epoch is read then.
        return self._counted(iter(self.loader), self.epoch)

    def _counted(self, batches: Iterator[Batch], epoch: int) -> Iterator[Batch]:
        for batch in batches:
            self.stats.update(batch)
            yield batch
        if self._under_way and self.epoch == epoch:  # finished, and still the latest pass
            self.set_epoch(epoch + 1)
