"""`--add`: curate a new input into a finished dataset. Only what is new is fetched and kept,
deduplicated against what is already there, and only the shards whose content changes are
rewritten; every other shard keeps its name and its bytes.

The addition has its own work folder, `work/add-<id>/` (id: a digest of what decides its
items), so it resumes like a first run. Then, on metadata only, the existing index (places
`(-1, row)`: earlier than anything new) and the new staging rows go through the dedup stages
together. An existing sample changes when it is dropped (a new copy is larger, or it is close
to an excluded dataset) or absorbs a new duplicate (its json grows); its shard is rewritten.
The rewritten and the new samples are written as a small dataset in the work folder, whose
shards are then renamed into `shards/` after the highest existing number; the index and the
manifest are written last (the commit), and only then are replaced shards deleted. A crash
before the commit leaves the old dataset whole, plus stray shard files the rerun overwrites.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shards import Dataset, DatasetError, DatasetWriter, WriterConfig
from shards.atomic import atomic_write
from shards.index import index_bytes
from shards.manifest import INDEX_NAME, MANIFEST_NAME, SHARD_DIR, WORK_DIR, manifest_bytes, shard_name
from shards.pack import REJECTS_NAME
from shards.reader import group_samples, iter_members
from shards.schema import INDEX_SCHEMA
from shards.stats import summarize

from .dedup import Merge, apply_stages, places, repeated_keys
from .engine import Engine
from .fetch import clear_parts, slice_dir
from .items import REJECTS_SCHEMA
from .neardup import summary
from .pack import DEDUP_NAME, absorbed, final_rejects, read_staging, reject_counts, write_parquet
from .pipeline import TOOL, CurateConfig, Events, _read_json, identity, plan_slices
from .sources import Source

PRESENT_REASON = "already-in-dataset"
COMMIT = "commit.json"  # in the addition's work folder: the new index and manifest are ready
NEXT = {INDEX_NAME: "index.parquet.next", MANIFEST_NAME: "dataset.json.next", REJECTS_NAME: "rejects.parquet.next",
        DEDUP_NAME: "dedup.parquet.next"}


def addition_id(wanted: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:12]


def prepare_add(out: Path, source: Source, config: CurateConfig, restart: bool) -> Path | None:
    """The work folder of this addition, ready; None when this input was already added."""
    manifest = _read_json(out / MANIFEST_NAME)
    curation = (manifest or {}).get("curation") or {}
    if manifest is None or curation.get("tool") != TOOL:
        raise DatasetError(f"--add needs a finished {TOOL} dataset in --out; {out} holds none")
    wanted = identity(source, config)
    work = out / WORK_DIR / f"add-{addition_id(wanted)}"
    if (work / COMMIT).exists():  # killed while committing: finish it
        finish(out, work)
        return None
    first = (_read_json(out / WORK_DIR / "config.json") or {}).get("identity")
    if wanted == first or any(a.get("identity") == wanted for a in curation.get("additions", [])):
        return None
    if restart:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    atomic_write(work / "config.json", json.dumps({"identity": wanted, "config": config.resolved()},
                                                  indent=2).encode())
    return work


def add(source: Source, out: str | Path, config: CurateConfig, engine: Engine,
        restart: bool = False, events: Events | None = None) -> dict[str, Any]:
    out = Path(out).absolute()
    events = events or Events()
    work = prepare_add(out, source, config, restart)
    if work is None:
        return json.loads((out / MANIFEST_NAME).read_bytes())
    clear_parts(work)
    events.begin(source.count())
    engine.run(plan_slices(source, config, work, lambda done: events.advance(
        {k: done[k] for k in ("items", "kept", "rejected")})), str(work), source, config.worker,
        progress=events.advance, done=lambda done: None)
    numbers = list(range(json.loads((work / "plan.json").read_bytes())["slices"]))
    dataset = Dataset(str(out))
    new_all, rejects = read_staging(work, numbers)
    new, present = _split_present(new_all, set(dataset.index["key"].to_pylist()))
    old = dataset.index.drop_columns(["shard", "offset"])
    old = old.append_column("slice", pa.array([-1] * old.num_rows, pa.int64())).append_column(
        "row", pa.array(range(old.num_rows), pa.int64()))
    merges, relabel = repeated_keys(new, rejects) if new is not None else ([], {})
    combined = pa.concat_tables([old, *([new.cast(old.schema)] if new is not None else [])])
    gone_first = {m.dropped for m in merges}
    rest = combined.filter(pa.array([p not in gone_first for p in places(combined)], pa.bool_()))
    merges += apply_stages(rest, config.dedup)
    rejects = pa.concat_tables([final_rejects(combined, rejects, relabel, merges), present])
    skip = set(places(new_all)) - set(places(new)) if new is not None else set()  # already there
    manifest, replaced = _splice(out, work, dataset, combined, numbers, merges, skip, config, events)
    manifest["curation"] = _record(manifest["curation"], source, work, combined, merges, rejects, numbers)
    stages = manifest["curation"]["dedup"].get("stages", [])
    manifest["curation"]["dedup"]["stages"] = list(dict.fromkeys([*stages, *(s.name for s in config.dedup)]))
    _stage_records(out, work, rejects, combined, merges)
    atomic_write(work / NEXT[MANIFEST_NAME], manifest_bytes(manifest))
    atomic_write(work / COMMIT, json.dumps({"replaced": replaced}).encode())
    finish(out, work)
    events.end()
    for number in numbers:
        shutil.rmtree(slice_dir(work, number) / SHARD_DIR, ignore_errors=True)
    return manifest


def finish(out: Path, work: Path) -> None:
    """Roll a decided commit forward: each file into place (index first, manifest last), then
    the replaced shards go. Safe to repeat after a kill at any point."""
    replaced = json.loads((work / COMMIT).read_bytes())["replaced"]
    for final, staged in NEXT.items():
        if (work / staged).exists():
            os.replace(work / staged, out / final)
    for name in replaced:
        (out / name).unlink(missing_ok=True)
    (work / COMMIT).unlink()


def _split_present(new: pa.Table | None, keys: set[str]) -> tuple[pa.Table | None, pa.Table]:
    """New rows whose key the dataset already holds (the same URL, file or photo) become rejects."""
    if new is None:
        return None, REJECTS_SCHEMA.empty_table()
    mask = [k in keys for k in new["key"].to_pylist()]
    there = new.filter(pa.array(mask, pa.bool_()))
    rejects = pa.table({
        "source_id": there["source_id"], "reason": pa.array([PRESENT_REASON] * there.num_rows, pa.string()),
        "detail": pa.array(["the dataset already holds this key"] * there.num_rows, pa.string()),
        "key": there["key"], "source": there["source"], "position": pa.nulls(there.num_rows, pa.int64()),
    }, schema=REJECTS_SCHEMA)
    return new.filter(pa.array([not m for m in mask], pa.bool_())), rejects


def _inherited(dataset: Dataset, combined: pa.Table, merges: list[Merge]) -> dict:
    """Existing samples that go keep their own duplicates: these pass to their final keeper."""
    into = {m.dropped: m.kept for m in merges if m.kept is not None}
    row_of = {p: i for i, p in enumerate(places(combined))}
    found: dict = defaultdict(list)
    for dropped in into:
        i = row_of[dropped]
        if dropped[0] == -1 and combined["dup_count"][i].as_py():
            keeper = into[dropped]
            while keeper in into:
                keeper = into[keeper]
            found[keeper] += dataset.get(combined["key"][i].as_py()).meta.extra.get("duplicates", [])
    return found


def _splice(out: Path, work: Path, dataset: Dataset, combined: pa.Table, numbers: list[int],
            merges: list[Merge], skip: set, config: CurateConfig, events: Events):
    gone = {m.dropped for m in merges} | skip
    extra = absorbed(combined, merges)
    for keeper, records in _inherited(dataset, combined, merges).items():
        extra[keeper] = extra.get(keeper, []) + records
    index = dataset.index
    shard_of = index["shard"].to_pylist()
    changed = sorted({shard_of[row] for (slice_, row) in [*gone, *extra] if slice_ == -1})
    staged = work / "pack"
    shutil.rmtree(staged, ignore_errors=True)
    advance = events.phase("pack")
    with DatasetWriter(staged, WriterConfig(max_shard_bytes=config.max_shard_bytes)) as writer:
        row_of_key = {k: i for i, k in enumerate(index["key"].to_pylist())}
        for shard in changed:
            with open(out / shard, "rb") as f:
                for sample in group_samples(iter_members(f), shard):
                    _write(writer, (-1, row_of_key[sample.key]), sample, gone, extra, advance)
        for number in numbers:
            for row, sample in enumerate(Dataset(str(slice_dir(work, number))).iter_samples()):
                _write(writer, (number, row), sample, gone, extra, advance)
        fresh = writer.finalize()
    # Rename the new shards into place after the highest number in use, then commit.
    used = [int(m.group(1)) for s in dataset.shard_names if (m := re.search(r"shard-(\d+)\.tar$", s))]
    first = max(used, default=-1) + 1
    renamed = {s["name"]: shard_name(first + k) for k, s in enumerate(fresh["shards"])}
    for old_name, new_name in renamed.items():
        os.replace(staged / old_name, out / new_name)
    fresh_index = pq.read_table(staged / INDEX_NAME)
    fresh_index = fresh_index.set_column(fresh_index.column_names.index("shard"), "shard",
                                         pa.array([renamed[s] for s in fresh_index["shard"].to_pylist()], pa.string()))
    kept_rows = index.filter(pa.array([s not in changed for s in shard_of], pa.bool_()))
    table = pa.concat_tables([kept_rows, fresh_index.cast(INDEX_SCHEMA)])
    atomic_write(work / NEXT[INDEX_NAME], index_bytes(table))
    shards = [s for s in dataset.manifest["shards"] if s["name"] not in changed]
    shards += [{**s, "name": renamed[s["name"]]} for s in fresh["shards"]]
    manifest = {**dataset.manifest, "num_samples": table.num_rows, "num_shards": len(shards),
                "total_bytes": sum(s["nbytes"] for s in shards), "shards": shards, "stats": summarize(table),
                "updated": fresh["created"]}
    shutil.rmtree(staged, ignore_errors=True)
    return manifest, changed


def _write(writer: DatasetWriter, place, sample, gone: set, extra: dict, advance) -> None:
    if place in gone:
        return
    meta = sample.meta
    if place in extra:
        dups = [*meta.extra.get("duplicates", []), *extra[place]] if place[0] == -1 else extra[place]
        meta = dataclasses.replace(meta, dup_count=len(dups), extra={**meta.extra, "duplicates": dups})
    writer.add(meta, sample.data)
    advance(1)


def _record(curation: dict[str, Any], source: Source, work: Path, combined: pa.Table, merges: list[Merge],
            rejects: pa.Table, numbers: list[int]) -> dict[str, Any]:
    """The manifest's curation record with this addition folded in."""
    new_kept = sum(1 for p in places(combined) if p[0] >= 0) - sum(1 for m in merges if m.dropped[0] >= 0)
    removed_old = sum(1 for m in merges if m.dropped[0] == -1)
    items = rejects.num_rows + new_kept - sum(1 for m in merges if m.dropped[0] == -1)
    counts = dict(curation.get("counts") or {})
    counts["items"] = counts.get("items", 0) + items
    counts["kept"] = counts.get("kept", 0) + new_kept - removed_old
    counts["rejected"] = counts.get("rejected", 0) + rejects.num_rows
    reasons = Counter(curation.get("rejects") or {})
    reasons.update(reject_counts(rejects))
    dedup = dict(curation.get("dedup") or {})
    for name, value in {**dict(Counter(m.reason for m in merges)), "merged": len(merges),
                        **summary(combined, merges)}.items():
        dedup[name] = dedup.get(name, 0) + value
    addition = {"identity": json.loads((work / "config.json").read_bytes())["identity"],
                "source": source.describe(), "items": items, "kept": new_kept, "replaced_existing": removed_old,
                "slices": len(numbers)}
    return {**curation, "sources": [*curation.get("sources", []), source.describe()], "counts": counts,
            "rejects": dict(reasons.most_common()), "dedup": dedup,
            "additions": [*curation.get("additions", []), addition]}


def _stage_records(out: Path, work: Path, rejects: pa.Table, combined: pa.Table, merges: list[Merge]) -> None:
    """work/rejects.parquet and work/dedup.parquet with this addition's rows appended, staged
    for the commit."""
    old = pq.read_table(out / REJECTS_NAME) if (out / REJECTS_NAME).exists() else REJECTS_SCHEMA.empty_table()
    write_parquet(work / NEXT[REJECTS_NAME], pa.concat_tables([old.cast(REJECTS_SCHEMA), rejects.cast(REJECTS_SCHEMA)]))
    keys = combined["key"].to_pylist()
    row_of = {p: i for i, p in enumerate(places(combined))}
    table = pa.table({"key": pa.array([keys[row_of[m.dropped]] for m in merges], pa.string()),
                      "kept_key": pa.array([None if m.kept is None else keys[row_of[m.kept]] for m in merges],
                                           pa.string()),
                      "reason": pa.array([m.reason for m in merges], pa.string())})
    if (out / DEDUP_NAME).exists():
        table = pa.concat_tables([pq.read_table(out / DEDUP_NAME).cast(table.schema), table])
    write_parquet(work / NEXT[DEDUP_NAME], table)
