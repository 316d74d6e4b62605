"""Reading datasets from local paths, brace patterns and a local HTTP server."""

import random

import pytest

from shards import Dataset, DatasetError, IndexFilter, iter_shard_urls
from shards.format.reader import expand_shards

from .test_writer import write_blobs


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader") / "ds"
    rng = random.Random(3)
    written, manifest = write_blobs(root, [rng.randrange(0, 9000) for _ in range(60)], max_shard_bytes=60_000)
    return root, written, manifest


def test_brace_patterns_and_raw_shard_urls(dataset):
    root, written, manifest = dataset
    n = manifest["num_shards"]
    pattern = f"{root}/shards/shard-{{000000..{n - 1:06d}}}.tar"
    assert len(expand_shards(pattern)) == n
    assert [(s.meta, s.data) for s in iter_shard_urls(pattern)] == written


def test_reading_over_http(dataset, http_server):
    root, written, manifest = dataset
    base, ranges = http_server(root)
    ds = Dataset(f"{base}/")
    assert ds.manifest["num_samples"] == 60 and ds.loc.is_local is False
    assert ds.index.num_rows == 60
    assert [(s.meta, s.data) for s in ds.iter_samples()] == written
    ranges.clear()
    meta, data = written[37]
    got = ds.get(meta.key)
    assert (got.meta, got.data) == (meta, data)
    shard = ds.row(meta.key)["shard"]
    # Random access is one ranged read into one shard, from the image's header 512 bytes before
    # the indexed offset through its json: no scan.
    assert len(ranges) == 1 and all(path == f"/{shard}" for path, _, _ in ranges)
    assert ranges[0][1] == ds.row(meta.key)["offset"] - 512
    http_shards = f"{base}/shards/shard-{{000000..{manifest['num_shards'] - 1:06d}}}.tar"
    assert sum(1 for _ in iter_shard_urls(http_shards)) == 60


def test_fsspec_urls(dataset):
    root, written, _ = dataset
    ds = Dataset(f"file://{root}")
    assert [s.meta.key for s in ds.iter_samples()] == [m.key for m, _ in written]


def test_selection_and_seeking_reads(dataset):
    root, written, _ = dataset
    ds = Dataset(str(root))
    rows = ds.select(IndexFilter(licenses=("cc-by",), min_side=110))
    expected = [m.key for m, _ in written if m.license == "cc-by" and min(m.width, m.height) >= 110]
    assert sorted(rows["key"].to_pylist()) == sorted(expected) and expected
    assert sorted(s.key for s in ds.iter_selected(rows)) == sorted(expected)


def test_missing_key_and_bad_shard_policy(dataset, tmp_path):
    root, _, manifest = dataset
    ds = Dataset(str(root))
    with pytest.raises(DatasetError, match="no sample with key 'nope'"):
        ds.get("nope")
    missing = ["shards/shard-999999.tar", manifest["shards"][0]["name"]]
    with pytest.raises(DatasetError, match="is not a shard of"):
        list(ds.iter_samples(shards=missing))
    errors = []
    samples = list(ds.iter_samples(shards=missing, on_error=errors.append))
    assert len(errors) == 1 and len(samples) == manifest["shards"][0]["num_samples"]


def test_get_reads_a_long_json_in_a_second_read(tmp_path):
    import dataclasses

    from shards import DatasetWriter
    from tests.factories import make_sample

    meta, data = make_sample(0, 32, 24)
    meta = dataclasses.replace(meta, extra={"duplicates": [f"url-{i:020d}" for i in range(400)]})
    with DatasetWriter(tmp_path / "ds") as writer:
        writer.add(meta, data)
        writer.finalize()
    assert len(meta.to_json_bytes()) > 4096
    got = Dataset(str(tmp_path / "ds")).get(meta.key)
    assert (got.meta, got.data) == (meta, data)
