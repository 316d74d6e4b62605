"""Near duplicates through whole runs (inline engine, real photos when present): copies collapse
into the original-resolution one whatever order they arrive in, distinct photos stay apart, an
excluded dataset's near duplicates are removed, and adding to a dataset does not duplicate."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from curation.dedup import ExactDedup, ExcludeNear, NearDedup
from curation.engine import InlineEngine
from curation.entry import add, curate
from curation.sources.folder import FolderSource
from shards import Dataset
from shards.intake.pack import file_key
from shards.tools.verify import verify_dataset
from tests.factories import encode

from .corpus import photo
from .helpers import FAST_FETCH, fast_config, rejects_of


def config(**kw):
    return dataclasses.replace(fast_config(slice_size=4, min_side=64), **kw)


def copies(i: int) -> dict[str, bytes]:
    """Photo i at 960x640 and the copies a scrape meets: downscaled, re-encoded, both."""
    base = photo(i, 960, 640)
    return {"orig": encode(base, "JPEG", quality=92),
            "half": encode(base.resize((480, 320), Image.Resampling.LANCZOS), "JPEG", quality=85),
            "quarter-q60": encode(base.resize((240, 160), Image.Resampling.LANCZOS), "JPEG", quality=60),
            "q60": encode(base, "JPEG", quality=60),  # as many pixels as the original
            "eighth": encode(base.resize((120, 80), Image.Resampling.LANCZOS), "JPEG", quality=90)}


def write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def kept_by_file(out: Path) -> dict[str, dict]:
    return {row["source_id"]: row for row in Dataset(str(out)).index.to_pylist()}


@pytest.mark.parametrize("first", ["orig", "eighth", "half"])
def test_copies_collapse_to_the_original_resolution_whatever_the_order(tmp_path, first):
    files = copies(0)
    # Folder order is name order: the prefix decides which copy arrives first.
    names = {name: (f"0-{name}.jpg" if name == first else f"1-{name}.jpg") for name in files}
    write(tmp_path / "in", {names[n]: data for n, data in files.items()})
    out = tmp_path / "ds"
    manifest = curate(FolderSource(str(tmp_path / "in")), out, config(), InlineEngine())
    kept = kept_by_file(out)
    # "orig" and "q60" are both 960x640: of equal pixels and provenance the earlier one stays,
    # so only the size is asserted.
    (only,) = kept.values()
    assert (only["width"], only["height"]) == (960, 640)
    sample = Dataset(str(out)).get(only["key"])
    dups = sample.meta.extra["duplicates"]
    assert sample.meta.dup_count == len(dups) == 4
    assert {(d["width"], d["height"]) for d in dups} >= {(480, 320), (240, 160), (120, 80)}
    assert all(d["reason"] == "near-duplicate" and d["source"] == "folder" for d in dups)
    assert {r["reason"] for r in rejects_of(out)} == {"near-duplicate"}
    dedup = manifest["curation"]["dedup"]
    first_pixels = {"orig": 960 * 640, "eighth": 120 * 80, "half": 480 * 320}[first]
    assert (dedup["clusters"], dedup["removed"]) == (1, 4)
    assert dedup["pixels_recovered"] == 960 * 640 - first_pixels
    assert verify_dataset(str(out), deep=True).ok


def test_distinct_photos_are_never_merged(tmp_path):
    files = {}
    for i in range(15):
        for name, data in copies(i).items():
            if name in ("orig", "quarter-q60"):
                files[f"p{i:02d}-{name}.jpg"] = data
    # distinct crops of one large photo: four tiles
    big = photo(3, 1600, 1200)
    for t, (x, y) in enumerate([(0, 0), (800, 0), (0, 600), (800, 600)]):
        files[f"tile-{t}.jpg"] = encode(big.crop((x, y, x + 800, y + 600)), "JPEG")
    write(tmp_path / "in", files)
    out = tmp_path / "ds"
    curate(FolderSource(str(tmp_path / "in")), out, config(), InlineEngine())
    kept = kept_by_file(out)
    assert set(kept) == {f"p{i:02d}-orig.jpg" for i in range(15)} | {f"tile-{t}.jpg" for t in range(4)}
    for i in range(15):  # each photo absorbed its own small copy, and nothing else
        sample = Dataset(str(out)).get(kept[f"p{i:02d}-orig.jpg"]["key"])
        assert [d["source_id"] for d in sample.meta.extra["duplicates"]] == [f"p{i:02d}-quarter-q60.jpg"]


def test_near_duplicates_of_an_excluded_dataset_are_removed(tmp_path):
    test_set = tmp_path / "test-set"
    write(tmp_path / "test-in", {f"t{i}.jpg": copies(i)["half"] for i in (0, 1)})
    curate(FolderSource(str(tmp_path / "test-in")), test_set, config(), InlineEngine())
    files = {f"p{i}-{n}.jpg": copies(i)[n] for i in range(4) for n in ("orig", "eighth")}
    write(tmp_path / "in", files)
    out = tmp_path / "ds"
    stages = (ExcludeNear((str(test_set),), 8), ExactDedup(), NearDedup(8))
    manifest = curate(FolderSource(str(tmp_path / "in")), out, config(dedup=stages), InlineEngine())
    assert set(kept_by_file(out)) == {"p2-orig.jpg", "p3-orig.jpg"}
    reasons = {r["source_id"]: r for r in rejects_of(out)}
    for name in ("p0-orig.jpg", "p0-eighth.jpg", "p1-orig.jpg", "p1-eighth.jpg"):
        assert reasons[name]["reason"] == "excluded"
        assert str(test_set) in reasons[name]["detail"] and file_key(f"t{name[1]}.jpg") in reasons[name]["detail"]
    assert manifest["curation"]["rejects"]["excluded"] == 4
    assert manifest["curation"]["dedup"]["removed"] == 2  # the two eighths of p2, p3


def test_adding_to_a_dataset_does_not_duplicate_and_rewrites_only_changed_shards(tmp_path):
    # 24 images in shards of a few each (generated images compress better than photos, so
    # the count, not the bound, keeps several shards untouched either way)
    first = {f"p{i:02d}-half.jpg": copies(i)["half"] for i in range(24)}
    write(tmp_path / "first", first)
    out = tmp_path / "ds"
    # small shards (a few samples each) for the first run, so that most can stay untouched
    small = dataclasses.replace(FAST_FETCH, max_bytes=70_000)
    cfg = config()
    cfg_small = dataclasses.replace(cfg, worker=dataclasses.replace(cfg.worker, fetch=small),
                                    max_shard_bytes=70_000 + 66_000)
    curate(FolderSource(str(tmp_path / "first")), out, cfg_small, InlineEngine())
    before = {s["name"]: (out / s["name"]).read_bytes() for s in Dataset(str(out)).manifest["shards"]}
    old_rows = kept_by_file(out)

    # photo 0 again at full size (replaces the existing half), photo 1 smaller (absorbed),
    # photo 2's very file again under its old name (already there), and a new photo 30
    second = {"p00-orig.jpg": copies(0)["orig"], "p01-eighth.jpg": copies(1)["eighth"],
              "p02-half.jpg": first["p02-half.jpg"], "p30-orig.jpg": copies(30)["orig"]}
    write(tmp_path / "second", second)
    manifest = add(FolderSource(str(tmp_path / "second")), out, cfg, InlineEngine())
    ds = Dataset(str(out))
    rows = kept_by_file(out)
    assert set(rows) == {f"p{i:02d}-half.jpg" for i in range(1, 24)} | {"p00-orig.jpg", "p30-orig.jpg"}
    keys = ds.index["key"].to_pylist()
    assert len(keys) == len(set(keys)) == manifest["num_samples"] == 25
    assert ds.get(rows["p00-orig.jpg"]["key"]).meta.extra["duplicates"][0]["source_id"] == "p00-half.jpg"
    assert ds.get(rows["p01-half.jpg"]["key"]).meta.extra["duplicates"][0]["source_id"] == "p01-eighth.jpg"
    # shards holding neither p00 nor p01 kept their names and bytes
    touched = {old_rows["p00-half.jpg"]["shard"], old_rows["p01-half.jpg"]["shard"]}
    assert len(before) - len(touched) >= 2
    after = {s["name"] for s in manifest["shards"]}
    for name, data in before.items():
        if name in touched:
            assert name not in after and not (out / name).exists()
        else:
            assert name in after and (out / name).read_bytes() == data
    assert verify_dataset(str(out), deep=True).ok
    reasons = {r["source_id"]: r["reason"] for r in rejects_of(out)}
    assert reasons["p02-half.jpg"] == "already-in-dataset" and reasons["p00-half.jpg"] == "near-duplicate"
    assert reasons["p01-eighth.jpg"] == "near-duplicate"
    counts = manifest["curation"]["counts"]
    assert counts["kept"] == 25 and counts["items"] == 28 and counts["rejected"] == 3

    # adding the same input again changes nothing
    again = add(FolderSource(str(tmp_path / "second")), out, cfg, InlineEngine())
    assert again["shards"] == manifest["shards"] and again["num_samples"] == 25


@pytest.mark.slow  # more than a few seconds
def test_cli_add_and_exclude_flags(tmp_path):
    write(tmp_path / "a", {"p0.jpg": copies(0)["half"], "p5.jpg": copies(5)["half"]})
    write(tmp_path / "b", {"p0-big.jpg": copies(0)["orig"], "p6.jpg": copies(6)["half"]})
    write(tmp_path / "test", {"t6.jpg": copies(6)["eighth"]})
    cli = [sys.executable, "-m", "curation.cli"]
    flags = ["--no-ray", "--min-side", "64", "--slice-size", "4", "--shard-size", "80MB"]

    def run(*args):
        result = subprocess.run([*cli, *args, *flags], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result

    run("folder", str(tmp_path / "test"), "--out", str(tmp_path / "testset"))
    run("folder", str(tmp_path / "a"), "--out", str(tmp_path / "ds"))
    result = subprocess.run([*cli, "folder", str(tmp_path / "b"), "--out", str(tmp_path / "ds"), *flags],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--add" in result.stderr
    run("folder", str(tmp_path / "b"), "--out", str(tmp_path / "ds"), "--add",
        "--exclude", str(tmp_path / "testset"), "--dedup-radius", "8")
    assert set(kept_by_file(tmp_path / "ds")) == {"p0-big.jpg", "p5.jpg"}
    manifest = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert manifest["curation"]["dedup"]["clusters"] == 1
    info = subprocess.run([sys.executable, "-m", "shards.tools.cli", "info", str(tmp_path / "ds")],
                          capture_output=True, text=True, timeout=60)
    assert "pixels recovered" in info.stdout and "clusters" in info.stdout


def test_an_addition_killed_while_committing_is_finished_by_the_rerun(tmp_path, monkeypatch):
    import curation.incremental as incremental

    write(tmp_path / "first", {f"p{i}.jpg": copies(i)["half"] for i in range(3)})
    out = tmp_path / "ds"
    curate(FolderSource(str(tmp_path / "first")), out, config(), InlineEngine())
    write(tmp_path / "second", {"p0-big.jpg": copies(0)["orig"], "p7.jpg": copies(7)["half"]})
    real_finish = incremental.finish_commit

    def killed(root, stage):  # the index is in place, then the process dies
        if not (stage / "commit.json").exists():  # the rerun's check before it starts
            return real_finish(root, stage)
        (stage / "index.parquet.next").replace(root / "index.parquet")
        raise KeyboardInterrupt

    monkeypatch.setattr(incremental, "finish_commit", killed)
    with pytest.raises(KeyboardInterrupt):
        add(FolderSource(str(tmp_path / "second")), out, config(), InlineEngine())
    monkeypatch.setattr(incremental, "finish_commit", real_finish)
    manifest = add(FolderSource(str(tmp_path / "second")), out, config(), InlineEngine())
    assert set(kept_by_file(out)) == {"p0-big.jpg", "p1.jpg", "p2.jpg", "p7.jpg"}
    assert manifest["num_samples"] == 4 and len(manifest["curation"]["additions"]) == 1
    assert verify_dataset(str(out), deep=True).ok
