"""Committing a change to a dataset: replaced shards give way to new ones, the index and the
manifest follow, and a kill at any point leaves either the old dataset or a commit that the
next `finish_commit` completes."""

import json
import random

import pytest

from shards import Dataset, DatasetWriter, WriterConfig
from shards.format.commit import (
    MARKER,
    adopt_shards,
    changed_manifest,
    finish_commit,
    replace_shards,
    stage_commit,
)
from shards.tools.verify import verify_dataset

from .test_writer import blob_sample, write_blobs


def stage_change(root, stage):
    """Rewrite shard 0 without its first sample and add two new samples, staged, not finished."""
    ds = Dataset(str(root))
    first = ds.manifest["shards"][0]["name"]
    rng = random.Random(9)
    with DatasetWriter(stage / "pack", WriterConfig(max_shard_bytes=20_000)) as writer:
        for sample in list(ds.iter_samples())[1:ds.manifest["shards"][0]["num_samples"]]:
            writer.add(sample.meta, sample.data)
        for i in (100, 101):
            writer.add(*blob_sample(i, 3000, rng))
        fresh = writer.finalize()
    moves, new_shards, new_index = adopt_shards(stage, stage / "pack", fresh, ds.shard_names)
    shards, table = replace_shards(root, ds.manifest, ds.index, [first], new_shards, new_index)
    index_data, manifest = changed_manifest(ds.manifest, shards, table, curation={"tool": "test", "changed": 1})
    stage_commit(stage, index_data, manifest, [first], moves, files={"work/note.txt": b"changed"})
    return ds, first


def test_a_commit_replaces_shards_and_keeps_the_others(tmp_path):
    written, before = write_blobs(tmp_path / "ds", [4000] * 9, max_shard_bytes=20_000)
    stage = tmp_path / "stage"
    stage.mkdir()
    old, first = stage_change(tmp_path / "ds", stage)
    # decided, not yet finished: the old dataset is untouched
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text()) == before
    assert sorted(p.name for p in (tmp_path / "ds" / "shards").iterdir()) == sorted(n[7:] for n in before_names(before))
    assert verify_dataset(str(tmp_path / "ds")).ok
    assert finish_commit(tmp_path / "ds", stage) and not finish_commit(tmp_path / "ds", stage)
    ds = Dataset(str(tmp_path / "ds"))
    keys = [s.meta.key for s in ds.iter_samples()]
    assert sorted(keys) == sorted([m.key for m, _ in written[1:]] + [f"url-{i:020x}" for i in (100, 101)])
    assert first not in ds.shard_names and not (tmp_path / "ds" / first).exists()
    # untouched shards keep their names and bytes; new ones come after the highest number
    assert [s for s in before["shards"][1:]] == [s for s in ds.manifest["shards"] if s["name"] in before_names(before)]
    assert min(int(n[-10:-4]) for n in ds.shard_names if n not in before_names(before)) == before["num_shards"]
    assert ds.manifest["curation"] == {"tool": "test", "changed": 1} and ds.manifest["created"] == before["created"]
    assert (tmp_path / "ds" / "work" / "note.txt").read_bytes() == b"changed"
    assert verify_dataset(str(tmp_path / "ds")).ok


def before_names(manifest):
    return {s["name"] for s in manifest["shards"]}


@pytest.mark.parametrize("moved", [1, 2])
def test_a_commit_killed_while_finishing_completes_on_the_next_call(tmp_path, moved):
    write_blobs(tmp_path / "ds", [4000] * 9, max_shard_bytes=20_000)
    stage = tmp_path / "stage"
    stage.mkdir()
    stage_change(tmp_path / "ds", stage)
    # a kill after the shards and `moved` staged files went into place (the note, then the index)
    decided = json.loads((stage / MARKER).read_text())
    assert decided["files"][-2:] == ["index.parquet", "dataset.json"]  # the manifest last
    for staged, name in decided["moves"].items():
        (stage / staged).replace(tmp_path / "ds" / name)
    (tmp_path / "ds" / "work").mkdir()
    for name in decided["files"][:moved]:
        (stage / (name.replace("/", "--") + ".next")).replace(tmp_path / "ds" / name)
    assert finish_commit(tmp_path / "ds", stage)
    assert len(Dataset(str(tmp_path / "ds"))) == 10
    assert verify_dataset(str(tmp_path / "ds")).ok
