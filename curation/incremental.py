"""`--add`: curate a new input into a finished dataset. Only what is new is fetched and kept,
deduplicated against what is already there, and only the shards whose content changes are
rewritten; every other shard keeps its name and its bytes.

The addition has its own work folder, `work/add-<id>/` (id: a digest of what decides its
items), so it resumes like a first run, through the same fetch phase. Then, on metadata only,
the existing index (places `(-1, row)`: earlier than anything new) and the new staging rows go
through the dedup stages together. An existing sample changes when it is dropped (a new copy is
larger, or it is close to an excluded dataset) or absorbs a new duplicate (its json grows); its
shard is rewritten. The rewritten and the new samples are written as a small dataset in the
work folder and committed by `shards.format.commit`: shards moved in under new numbers, the index and
the manifest last, replaced shards deleted after; a kill at any point resumes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shards import Dataset, DatasetError, DatasetWriter
from shards.format.commit import adopt_shards, changed_manifest, finish_commit, replace_shards, stage_commit
from shards.format.manifest import MANIFEST_NAME
from shards.format.reader import group_samples, iter_members
from shards.intake.pack import REJECTS_NAME

from . import signature_files
from .dedup import MergePlan, Place, places, plan_merges, repeated_keys
from .dedup.crops import unsigned
from .engine import Engine
from .items import REJECTS_SCHEMA
from .pack import (
    add_sample,
    final_rejects,
    parquet_bytes,
    read_staging,
    reject_counts,
    staged_samples,
    surviving_signatures,
    with_places,
)
from .pipeline import TOOL, CurateConfig, Events, identity, made_by_curate
from .slices import FetchPlan, fetch_phase
from .sources import Source
from .workdir import DEDUP_NAME, WorkDir, read_json

PRESENT_REASON = "already-in-dataset"


def addition_id(wanted: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:12]


def prepare_add(out: Path, source: Source, config: CurateConfig, restart: bool) -> WorkDir | None:
    """The work folder of this addition, ready; None when this input was already added."""
    manifest = read_json(out / MANIFEST_NAME)
    curation = (manifest or {}).get("curation") or {}
    if not made_by_curate(manifest):
        raise DatasetError(f"--add needs a finished {TOOL} dataset in --out; {out} holds none")
    signature_files.check(out)  # a damaged signature file fails now, not after the fetch
    wanted = identity(source, config)
    work = WorkDir.of(out).addition(addition_id(wanted))
    if finish_commit(out, work.root):  # killed while committing: finished now
        shutil.rmtree(work.pack, ignore_errors=True)
        return None
    first = (WorkDir.of(out).saved() or {}).get("identity")
    if wanted == first or any(a.get("identity") == wanted for a in curation.get("additions", [])):
        return None
    if restart:
        shutil.rmtree(work.root, ignore_errors=True)
    work.save_config(wanted, config.resolved())
    return work


def run_add(source: Source, out: Path, work: WorkDir, config: CurateConfig, engine: Engine,
            events: Events) -> dict[str, Any]:
    """A prepared addition: fetch, deduplicate with what is there, commit the changed shards."""
    plan = fetch_phase(source, config.slice_size, config.worker, work, engine, events)
    dataset = Dataset(str(out))
    new_all, rejects = read_staging(work, plan.numbers)
    new, present = _split_present(new_all, set(dataset.index["key"].to_pylist()))
    old = with_places(signature_files.attach(dataset.index, signature_files.of_dataset(out)), -1)
    repeats, relabel = repeated_keys(new, rejects) if new is not None else ([], {})
    combined = pa.concat_tables([old, *([new.cast(old.schema)] if new is not None else [])])
    merges = plan_merges(combined, config.dedup, repeats)
    rejects = pa.concat_tables([final_rejects(rejects, relabel, merges), present])
    skip = set(places(new_all)) - set(places(new)) if new is not None else set()  # already there
    curation = _record(dataset.manifest["curation"], source, work, merges, rejects, plan)
    curation["dedup"]["unsigned"] = unsigned(combined, config.dedup)  # now, not summed over additions
    stages = curation["dedup"].get("stages", [])
    curation["dedup"]["stages"] = list(dict.fromkeys([*stages, *(s.name for s in config.dedup)]))
    index_data, manifest, replaced, moves = _splice(out, work, dataset, merges, plan, skip, config, events, curation)
    stage_commit(work.root, index_data, manifest, replaced, moves, files=_records(out, rejects, merges))
    finish_commit(out, work.root)
    shutil.rmtree(work.pack, ignore_errors=True)
    events.end()
    work.drop_staged_bytes(plan.numbers)
    return manifest


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


def _inherited(dataset: Dataset, merges: MergePlan) -> dict[Place, list[dict[str, Any]]]:
    """Existing samples that go keep their own duplicates: these pass to their final keeper."""
    found: dict = defaultdict(list)
    table = merges.table
    for m in merges.merges:
        i = merges.row_of[m.dropped]
        if m.kept is not None and m.dropped[0] == -1 and table["dup_count"][i].as_py():
            found[merges.keeper(m.kept)] += dataset.get(table["key"][i].as_py()).meta.extra.get("duplicates", [])
    return found


def _splice(out: Path, work: WorkDir, dataset: Dataset, merges: MergePlan, plan: FetchPlan, skip: set,
            config: CurateConfig, events: Events, curation: dict[str, Any]):
    """Write the changed and the new samples into the addition's `pack/`; the new index bytes
    and manifest, the shards they replace and the moves that bring the new ones in."""
    gone = merges.gone | skip
    extra = merges.absorbed()
    for keeper, records in _inherited(dataset, merges).items():
        extra[keeper] = extra.get(keeper, []) + records
    shard_of = dataset.index["shard"].to_pylist()
    changed = sorted({shard_of[row] for (slice_, row) in [*gone, *extra] if slice_ == -1})
    shutil.rmtree(work.pack, ignore_errors=True)
    advance = events.phase("pack")
    with DatasetWriter(work.pack, config.writer) as writer:
        row_of_key = {k: i for i, k in enumerate(dataset.index["key"].to_pylist())}
        for shard in changed:
            with open(out / shard, "rb") as f:
                for sample in group_samples(iter_members(f), shard):
                    add_sample(writer, (-1, row_of_key[sample.key]), sample, gone, extra, advance)
        for place, sample in staged_samples(work, plan.numbers):
            add_sample(writer, place, sample, gone, extra, advance)
        fresh = writer.finalize()
    moves, new_shards, new_index = adopt_shards(work.root, work.pack, fresh, dataset.shard_names)
    shards, table = replace_shards(out, dataset.manifest, dataset.index, changed, new_shards, new_index)
    return (*changed_manifest(dataset.manifest, shards, table, curation=curation), changed, moves)


def _record(curation: dict[str, Any], source: Source, work: WorkDir, merges: MergePlan,
            rejects: pa.Table, plan: FetchPlan) -> dict[str, Any]:
    """The manifest's curation record with this addition folded in."""
    dropped = [m.dropped for m in merges.merges]
    new_kept = sum(1 for p in places(merges.table) if p[0] >= 0) - sum(1 for p in dropped if p[0] >= 0)
    removed_old = sum(1 for p in dropped if p[0] == -1)
    items = rejects.num_rows + new_kept - removed_old
    counts = dict(curation.get("counts") or {})
    counts["items"] = counts.get("items", 0) + items
    counts["kept"] = counts.get("kept", 0) + new_kept - removed_old
    counts["rejected"] = counts.get("rejected", 0) + rejects.num_rows
    reasons = Counter(curation.get("rejects") or {})
    reasons.update(reject_counts(rejects))
    dedup = dict(curation.get("dedup") or {})
    for name, value in merges.summary().items():
        dedup[name] = dedup.get(name, 0) + value
    addition = {"identity": work.saved()["identity"], "source": source.describe(), "items": items,
                "kept": new_kept, "replaced_existing": removed_old, "slices": plan.slices}
    return {**curation, "sources": [*curation.get("sources", []), source.describe()], "counts": counts,
            "rejects": dict(reasons.most_common()), "dedup": dedup,
            "additions": [*curation.get("additions", []), addition]}


def _records(out: Path, rejects: pa.Table, merges: MergePlan) -> dict[str, bytes]:
    """work/rejects.parquet and work/dedup.parquet with this addition's rows appended, and
    work/signatures.parquet of the samples the addition leaves (an old dataset's samples,
    which have none, still have none)."""
    old = pq.read_table(out / REJECTS_NAME) if (out / REJECTS_NAME).exists() else REJECTS_SCHEMA.empty_table()
    table = merges.records()
    if (out / DEDUP_NAME).exists():
        earlier = pq.read_table(out / DEDUP_NAME)
        for field in table.schema:  # records written before a column existed (kept_because) have it null
            if field.name not in earlier.column_names:
                earlier = earlier.append_column(field, pa.nulls(earlier.num_rows, field.type))
        table = pa.concat_tables([earlier.select(table.schema.names).cast(table.schema), table])
    return {REJECTS_NAME: parquet_bytes(pa.concat_tables([old.cast(REJECTS_SCHEMA), rejects.cast(REJECTS_SCHEMA)])),
            DEDUP_NAME: parquet_bytes(table),
            signature_files.DATASET_SIGNATURES: parquet_bytes(surviving_signatures(merges))}
