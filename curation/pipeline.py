"""The curation run of a new dataset: its checks and its work folder ready (`prepare`), then
fetch slices (on an engine), resolve repeats and duplicates on metadata, pack (`run`).
`entry.start` is the one way in.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shards import DatasetError, WriterConfig
from shards.format.manifest import INDEX_NAME, MANIFEST_NAME, SHARD_DIR
from shards.format.writer import DEFAULT_SHARD_BYTES

from .dedup import DedupStage, plan_merges, repeated_keys, stages
from .dedup.crops import unsigned
from .engine import Engine
from .fetch import WorkerConfig, room_for
from .pack import final_rejects, pack, read_staging, reject_counts, write_records
from .slices import fetch_phase
from .sources import Source
from .workdir import WorkDir, read_json

TOOL = "anyres-curate"


def made_by_curate(manifest: dict[str, Any] | None) -> bool:
    """Whether a dataset's manifest says this tool made it: the one test of it."""
    return manifest is not None and (manifest.get("curation") or {}).get("tool") == TOOL


@dataclass(frozen=True)
class CurateConfig:
    worker: WorkerConfig = WorkerConfig()
    slice_size: int = 256  # items per fetch task: the unit of parallelism and of resumption
    max_shard_bytes: int = DEFAULT_SHARD_BYTES
    name: str | None = None
    dedup: tuple[DedupStage, ...] = field(default_factory=stages)

    def __post_init__(self) -> None:
        # The one check of the shard bounds: a file of the largest size allowed must fit a
        # shard, final or staging, with its two tar headers and its json.
        need = room_for(self.worker.fetch.max_bytes)
        for what, bound in (("shard size", self.max_shard_bytes), ("staging shard size", self.worker.staging_shard_bytes)):
            if bound < need:
                raise DatasetError(f"{what} {bound} bytes cannot hold a file of the largest size allowed "
                                   f"({self.worker.fetch.max_bytes} bytes); raise --shard-size or lower --max-bytes")

    @property
    def writer(self) -> WriterConfig:
        """How the final dataset is written."""
        return WriterConfig(max_shard_bytes=self.max_shard_bytes, name=self.name)

    def resolved(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["dedup"] = [stage.describe() for stage in self.dedup]
        return doc


class Events:
    """What the pipeline tells its user interface; the default says nothing."""

    def begin(self, total: int | None) -> None: ...
    def advance(self, delta: dict[str, int]) -> None: ...
    def phase(self, name: str, total: int | None = None) -> Callable[[int], None]:
        return lambda n: None
    def end(self) -> None: ...


def identity(source: Source, config: CurateConfig) -> dict[str, Any]:
    """What decides which items exist and which are kept: a rerun must agree on it."""
    return json.loads(json.dumps({"source": source.describe(), "slice_size": config.slice_size,
                                  "filters": asdict(config.worker.filters),
                                  "max_bytes": config.worker.fetch.max_bytes,
                                  "dedup": [stage.describe() for stage in config.dedup]}))


def prepare(out: Path, source: Source, config: CurateConfig, restart: bool) -> WorkDir | None:
    """Make `out` ready: its work folder, or None when it already holds the finished dataset
    of this input."""
    work = WorkDir.of(out)
    if restart:
        discard(out)
    manifest = read_json(out / MANIFEST_NAME)
    wanted = identity(source, config)
    check_out(out, wanted, manifest, work.saved(), lambda: not out.exists() or not any(out.iterdir()))
    if manifest is not None:
        return None
    work.save_config(wanted, config.resolved())
    return work


def check_out(out: Path | str, wanted: dict[str, Any], manifest: dict[str, Any] | None,
              saved: dict[str, Any] | None, empty: Callable[[], bool]) -> None:
    """The checks of an --out, a folder or a URL, before anything is written there: it holds
    nothing, or a run of this tool with the same identity (`saved`: its work folder's config)."""
    if manifest is not None and not made_by_curate(manifest):
        raise DatasetError(f"{out} holds a dataset not made by {TOOL}; choose another --out")
    if saved is None and manifest is None and not empty():
        raise DatasetError(f"{out} is not empty and holds no {TOOL} run; choose a new or empty --out")
    if saved is not None and saved.get("identity") != wanted:  # a rerun resumes only the run it repeats
        changed = sorted(k for k in wanted if wanted[k] != (saved.get("identity") or {}).get(k))
        raise DatasetError(f"{out} was curated with other settings ({', '.join(changed)} differ); "
                           "rerun with the same ones, add --restart to start over, or --add to add "
                           "this input to the finished dataset")


def discard(out: Path) -> None:
    if not (WorkDir.of(out).config.exists() or made_by_curate(read_json(out / MANIFEST_NAME))):
        return
    shutil.rmtree(WorkDir.of(out).root, ignore_errors=True)
    shutil.rmtree(out / SHARD_DIR, ignore_errors=True)
    for name in (MANIFEST_NAME, INDEX_NAME):
        (out / name).unlink(missing_ok=True)


def run(source: Source, out: Path, work: WorkDir, config: CurateConfig, engine: Engine,
        events: Events) -> dict[str, Any]:
    """A prepared run: fetch, deduplicate, pack."""
    started = time.monotonic()
    plan = fetch_phase(source, config.slice_size, config.worker, work, engine, events)
    fetch_seconds = time.monotonic() - started
    kept, rejects = read_staging(work, plan.numbers)
    repeats, relabel = repeated_keys(kept, rejects) if kept is not None else ([], {})
    merges = plan_merges(kept, config.dedup, repeats)
    rejects = final_rejects(rejects, relabel, merges)
    write_records(out, rejects, merges)
    items = (kept.num_rows if kept is not None else 0) + rejects.num_rows - len(merges.merges)
    curation = {
        "tool": TOOL,
        "config": config.resolved(),
        "sources": [source.describe()],
        "counts": {"items": items, "kept": items - rejects.num_rows, "rejected": rejects.num_rows,
                   "slices": plan.slices},
        "rejects": reject_counts(rejects),
        "dedup": {"stages": [s.name for s in config.dedup], **merges.summary(),
                  "unsigned": unsigned(kept, config.dedup)},
    }
    advance = events.phase("pack", curation["counts"]["kept"])
    manifest = pack(out, work, plan.numbers, merges, config.writer, curation, advance)
    events.end()
    work.drop_staged_bytes(plan.numbers)
    return {**manifest, "timing": {"fetch_s": round(fetch_seconds, 2),
                                   "total_s": round(time.monotonic() - started, 2)}}
