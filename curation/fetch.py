"""One fetch task: a slice of the input in, a staging dataset and its rejects out.

A slice is written to a private folder that the work folder's slice store gives (`store.py`)
as a complete dataset of its own (shards, index, manifest, through `shards.DatasetWriter`),
then its rejects and signatures, then `done.json`; the store then commits it, by a rename in a
local folder or by a marker object at a URL. A committed slice is never redone.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from plumbing.atomic import atomic_write_json, atomic_write_parquet
from shards import DatasetWriter, WriterConfig
from shards.format.schema import SampleMeta
from shards.intake.admission import FilterConfig, admit_decoded, sample_meta
from shards.intake.probe import ProbeError

from .dedup.image_signature import SCHEMA as SIGNATURE_SCHEMA
from .dedup.image_signature import Signature, signature
from .http import FetchConfig
from .items import REJECTS_SCHEMA, FetchError, Item, reject_record
from .signature_files import SIGNATURES_NAME
from .sources import Source
from .store import DONE_NAME, slice_name
from .workdir import SLICE_REJECTS, WorkDir

REPORT_EVERY = 0.5  # seconds between progress reports from a task


STAGING_SHARD_BYTES = 256 * 2**20
SAMPLE_ROOM = 64 * 1024  # a sample's two tar headers and its json, beyond the file itself


def room_for(max_file_bytes: int) -> int:
    """The smallest shard bound that holds a file of `max_file_bytes`."""
    return max_file_bytes + SAMPLE_ROOM


@dataclass(frozen=True)
class WorkerConfig:
    fetch: FetchConfig = FetchConfig()
    filters: FilterConfig = FilterConfig()
    threads: int = 16  # downloads in flight per worker: the web is slow, so many
    decoders: int = 2  # decodes at once per worker: a worker owns one CPU, and a progressive
    # JPEG's decode holds its whole coefficient array: more would add memory, not speed; two
    # let one decode run while the other thread does its Python parts (hashing, writing)
    staging_shard_bytes: int = STAGING_SHARD_BYTES  # checked with the final bound, by CurateConfig

    def staging_writer(self, number: int) -> WriterConfig:
        """How a slice's staging dataset is written."""
        return WriterConfig(max_shard_bytes=self.staging_shard_bytes, name=slice_name(number))


@dataclass(frozen=True)
class Slice:
    number: int
    items: tuple[Item, ...]


def ordered_map(fn: Callable[[Item], Any], items: Iterable[Item], threads: int) -> Iterator[Any]:
    """`map` on a thread pool, in input order, with at most 2 * threads results held: a slow
    item must not let the finished ones behind it pile up in memory."""
    with ThreadPoolExecutor(threads, thread_name_prefix="fetch") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def item_meta(item: Item, data: bytes, filters: FilterConfig) -> tuple[SampleMeta, Signature]:
    """The sample's metadata and its dedup signature, or ProbeError with the reason it is
    rejected. The signature comes from the probe's own reduced decode: no second decode."""
    provenance = dict(item.provenance)
    if item.source == "url":
        provenance.setdefault("url", item.source_id)
    decoded = admit_decoded(data, filters)
    meta = sample_meta(decoded.info, item.key, item.source, item.source_id, provenance, item.extra)
    return meta, signature(decoded.image, decoded.quantization)


def process(item: Item, open_item: Callable[[Item], bytes], filters: FilterConfig,
            cpu: threading.Semaphore | None = None):
    """(meta, signature, data) of a kept item, or its reject record."""
    if item.error is not None:
        return reject_record(item, *item.error)
    try:
        data = open_item(item)
        with cpu or contextlib.nullcontext():
            return *item_meta(item, data, filters), data
    except (FetchError, ProbeError) as exc:
        return reject_record(item, exc.reason, exc.detail)
    except Exception as exc:  # one odd file must not stop a scrape of millions; it is counted
        return reject_record(item, "internal-error", f"{type(exc).__name__}: {exc}")


def run_slice(work: WorkDir, task: Slice, source: Source, config: WorkerConfig,
              report: Callable[[dict[str, int]], None] | None = None) -> dict[str, Any]:
    store = work.store
    done = store.done(task.number)
    if done is not None:
        return done
    folder = store.begin(task.number)
    open_item = source.opener(config.fetch)
    rejects: list[dict[str, Any]] = []
    signatures: list[dict[str, Any]] = []  # in the order the writer adds samples: index order
    seen: set[str] = set()
    todo: list[Item] = []
    for item in task.items:
        if item.key in seen:  # the same URL twice in one slice: fetched once
            rejects.append(reject_record(item, "duplicate-url", "an earlier row has the same URL"))
        else:
            seen.add(item.key)
            todo.append(item)
    delta = Counter(items=len(rejects), rejected=len(rejects))
    last = time.monotonic()
    with DatasetWriter(folder, config.staging_writer(task.number)) as writer:
        cpu = threading.Semaphore(config.decoders)
        for result in ordered_map(lambda it: process(it, open_item, config.filters, cpu), todo, config.threads):
            delta["items"] += 1
            if isinstance(result, dict):
                rejects.append(result)
                delta["rejected"] += 1
            else:
                meta, sig, data = result
                writer.add(meta, data)
                signatures.append(sig.record(meta.key))
                delta["kept"] += 1
                delta["bytes"] += meta.nbytes
            if report and time.monotonic() - last > REPORT_EVERY:
                report(dict(delta))
                delta.clear()
                last = time.monotonic()
        writer.finalize(curation={"tool": "anyres-curate staging", "slice": task.number})
    if report and delta:
        report(dict(delta))
    _write_rejects(folder / SLICE_REJECTS, rejects)
    atomic_write_parquet(folder / SIGNATURES_NAME, pa.Table.from_pylist(signatures, schema=SIGNATURE_SCHEMA))
    done = {
        "slice": task.number, "items": len(task.items), "kept": writer.num_samples,
        "rejected": len(rejects), "first_position": task.items[0].position if task.items else None,
        "rejects": dict(Counter(r["reason"] for r in rejects).most_common()),
    }
    atomic_write_json(folder / DONE_NAME, done)
    return store.commit(task.number, folder, done)


def _write_rejects(path: Path, rejects: list[dict[str, Any]]) -> None:
    atomic_write_parquet(path, pa.Table.from_pylist(rejects, schema=REJECTS_SCHEMA))
