"""The curation run: fetch slices (on an engine), resolve repeats and duplicates on metadata,
pack. Also the work folder's bookkeeping: resuming, `--restart`, and `status`.

DATASET/work/ holds `config.json` (the resolved config; a rerun must match what decides the
result), `plan.json` (written once the whole input was enumerated), `staging/` (one finished
or unfinished dataset per slice), and at the end `rejects.parquet` and `dedup.parquet`.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from shards import DatasetError, WriterConfig
from shards.atomic import atomic_write
from shards.manifest import INDEX_NAME, MANIFEST_NAME, SHARD_DIR, WORK_DIR
from shards.writer import DEFAULT_SHARD_BYTES

from .dedup import DedupStage, ExactDedup, Merge, apply_stages, places, repeated_keys
from .engine import Engine
from .fetch import Slice, WorkerConfig, clear_parts, read_done, slice_dir
from .neardup import NearDedup, summary
from .pack import final_rejects, pack, read_staging, reject_counts, write_work_records
from .sources import Source

TOOL = "anyres-curate"


@dataclass(frozen=True)
class CurateConfig:
    worker: WorkerConfig = WorkerConfig()
    slice_size: int = 256  # items per fetch task: the unit of parallelism and of resumption
    max_shard_bytes: int = DEFAULT_SHARD_BYTES
    name: str | None = None
    dedup: tuple[DedupStage, ...] = field(default=(ExactDedup(), NearDedup()))

    def __post_init__(self) -> None:
        # A sample must fit a shard with its two tar headers and its json.
        if self.max_shard_bytes < self.worker.fetch.max_bytes + 64 * 1024:
            raise DatasetError(f"shard size {self.max_shard_bytes} bytes cannot hold a file of the "
                               f"largest size allowed ({self.worker.fetch.max_bytes} bytes); raise "
                               "--shard-size or lower --max-bytes")

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


def prepare(out: Path, source: Source, config: CurateConfig, restart: bool) -> bool:
    """Make `out` ready; True when it already holds the finished dataset of this input."""
    work = out / WORK_DIR
    if restart:
        discard(out)
    manifest = _read_json(out / MANIFEST_NAME)
    saved = _read_json(work / "config.json")
    if manifest is not None and (manifest.get("curation") or {}).get("tool") != TOOL:
        raise DatasetError(f"{out} holds a dataset not made by {TOOL}; choose another --out")
    if saved is None and manifest is None and out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} is not empty and holds no {TOOL} run; choose a new or empty --out")
    wanted = identity(source, config)
    if saved is not None and saved["identity"] != wanted:
        changed = sorted(k for k in wanted if wanted[k] != saved["identity"].get(k))
        raise DatasetError(f"{out} was curated with other settings ({', '.join(changed)} differ); "
                           "rerun with the same ones, add --restart to start over, or --add to add "
                           "this input to the finished dataset")
    if manifest is not None:
        return True
    work.mkdir(parents=True, exist_ok=True)
    atomic_write(work / "config.json", json.dumps({"identity": wanted, "config": config.resolved()},
                                                  indent=2).encode())
    return False


def discard(out: Path) -> None:
    manifest = _read_json(out / MANIFEST_NAME)
    ours = (out / WORK_DIR / "config.json").exists() or (
        manifest is not None and (manifest.get("curation") or {}).get("tool") == TOOL)
    if not ours:
        return
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    shutil.rmtree(out / SHARD_DIR, ignore_errors=True)
    for name in (MANIFEST_NAME, INDEX_NAME):
        (out / name).unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (ValueError, OSError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def plan_slices(source: Source, config: CurateConfig, work: Path, finished: Callable[[dict], None]) -> Iterator[Slice]:
    """Slices of the input, streaming; finished ones are reported, not yielded. Writes
    plan.json once the input is exhausted."""
    items = source.items()
    count = 0
    for number in itertools.count():
        chunk = tuple(itertools.islice(items, config.slice_size))
        if not chunk:
            atomic_write(work / "plan.json", json.dumps({"slices": number, "items": count}).encode())
            return
        count += len(chunk)
        done = read_done(slice_dir(work, number))
        if done is not None and done["items"] == len(chunk):
            finished(done)
        else:
            yield Slice(number, chunk)


def curate(source: Source, out: str | Path, config: CurateConfig, engine: Engine,
           restart: bool = False, events: Events | None = None) -> dict[str, Any]:
    out = Path(out).absolute()
    events = events or Events()
    if prepare(out, source, config, restart):
        return json.loads((out / MANIFEST_NAME).read_bytes())
    work = out / WORK_DIR
    clear_parts(work)
    started = time.monotonic()
    events.begin(source.count())

    def finished(done: dict[str, Any]) -> None:
        events.advance({"items": done["items"], "kept": done["kept"], "rejected": done["rejected"]})

    engine.run(plan_slices(source, config, work, finished), str(work), source, config.worker,
               progress=events.advance, done=lambda done: None)
    fetch_seconds = time.monotonic() - started
    numbers = list(range(json.loads((work / "plan.json").read_bytes())["slices"]))
    kept, rejects = read_staging(work, numbers)
    merges, relabel = repeated_keys(kept, rejects) if kept is not None else ([], {})
    if kept is not None:
        merges += apply_stages(_without(kept, merges), config.dedup)
    rejects = final_rejects(kept, rejects, relabel, merges)
    write_work_records(out, rejects, kept, merges)
    items = (kept.num_rows if kept is not None else 0) + rejects.num_rows - len(merges)
    curation = {
        "tool": TOOL,
        "config": config.resolved(),
        "sources": [source.describe()],
        "counts": {"items": items, "kept": items - rejects.num_rows, "rejected": rejects.num_rows,
                   "slices": len(numbers)},
        "rejects": reject_counts(rejects),
        "dedup": {"stages": [s.name for s in config.dedup],
                  **dict(Counter(m.reason for m in merges)), "merged": len(merges),
                  **(summary(kept, merges) if kept is not None else {})},
    }
    advance = events.phase("pack", curation["counts"]["kept"])
    writer_config = WriterConfig(max_shard_bytes=config.max_shard_bytes, name=config.name)
    manifest = pack(out, work, numbers, kept, merges, writer_config, curation, advance)
    events.end()
    for number in numbers:  # the bytes now live in the final shards; the small records stay
        shutil.rmtree(slice_dir(work, number) / SHARD_DIR, ignore_errors=True)
    return {**manifest, "timing": {"fetch_s": round(fetch_seconds, 2),
                                   "total_s": round(time.monotonic() - started, 2)}}


def _without(kept: pa.Table, merges: Sequence[Merge]) -> pa.Table:
    if not merges:
        return kept
    gone = {m.dropped for m in merges}
    return kept.filter(pa.array([p not in gone for p in places(kept)], pa.bool_()))


def status(out: str | Path) -> dict[str, Any]:
    out = Path(out).absolute()
    work = out / WORK_DIR
    manifest = _read_json(out / MANIFEST_NAME)
    saved = _read_json(work / "config.json")
    if saved is None and manifest is None:
        raise DatasetError(f"no {TOOL} run in {out}")
    plan = _read_json(work / "plan.json")
    totals: Counter = Counter()
    reasons: Counter = Counter()
    done_slices = 0
    for marker in sorted((work / "staging").glob("slice-*/done.json")):
        done = json.loads(marker.read_bytes())
        done_slices += 1
        totals.update({k: done[k] for k in ("items", "kept", "rejected")})
        reasons.update(done["rejects"])
    state = "complete" if manifest is not None else "fetching" if plan is None or done_slices < plan["slices"] else "packing"
    report = {"dataset": str(out), "state": state, "slices_done": done_slices,
              "slices_total": plan["slices"] if plan else None, "items_total": plan["items"] if plan else None,
              "items_done": totals["items"], "kept_staged": totals["kept"], "rejected_staged": totals["rejected"],
              "rejects": dict(reasons.most_common())}
    if manifest is not None:
        curation = manifest.get("curation") or {}
        report.update(num_samples=manifest["num_samples"], num_shards=manifest["num_shards"],
                      total_bytes=manifest["total_bytes"], counts=curation.get("counts"),
                      rejects=curation.get("rejects", {}))
    return report
