"""Writing datasets: round trip, the byte bound, determinism, and kill safety."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import textwrap
import time

import pytest

from shards import Dataset, DatasetError, DatasetWriter, FormatError, SampleMeta, WriterConfig
from shards.format.tario import FIXED_MTIME, MEMBER_MODE


def blob_sample(i: int, size: int, rng: random.Random) -> tuple[SampleMeta, bytes]:
    """A sample whose bytes are random: the writer and reader never decode images."""
    data = rng.randbytes(size)
    meta = SampleMeta(
        key=f"url-{i:020x}", width=100 + i, height=50 + 2 * i, orientation=1 + i % 8, format="jpeg",
        ext="jpg", mode="RGB", nbytes=size, sha256=hashlib.sha256(data).hexdigest(),
        phash=f"{i:016x}", source="url", source_id=f"https://example.org/{i}.jpg",
        url=f"https://example.org/{i}.jpg", license=None if i % 3 else "cc-by",
        extra={"note": f"sample {i}"} if i % 5 == 0 else {},
    )
    return meta, data


def write_blobs(root, sizes, max_shard_bytes, seed=0):
    rng = random.Random(seed)
    written = [blob_sample(i, size, rng) for i, size in enumerate(sizes)]
    with DatasetWriter(root, WriterConfig(max_shard_bytes=max_shard_bytes)) as writer:
        for meta, data in written:
            writer.add(meta, data)
        manifest = writer.finalize(curation={"tool": "test"})
    return written, manifest


def test_round_trip_many_samples(tmp_path):
    rng = random.Random(1)
    sizes = [rng.choice([0, 1, 511, 512, 513, rng.randrange(1, 40_000)]) for _ in range(300)]
    written, manifest = write_blobs(tmp_path / "ds", sizes, max_shard_bytes=150_000)
    ds = Dataset(str(tmp_path / "ds"))
    assert manifest["num_samples"] == len(ds) == 300 and manifest["num_shards"] > 5
    streamed = list(ds.iter_samples())
    assert [(s.meta, s.data) for s in streamed] == written  # bytes and metadata identical, in order
    rows = ds.index.to_pylist()
    for sample, row in zip(streamed, rows):
        assert (row["shard"], row["offset"], row["key"]) == (sample.shard, sample.offset, sample.key)
        with open(tmp_path / "ds" / row["shard"], "rb") as f:  # the offset is a plain seek
            f.seek(row["offset"])
            assert f.read(row["nbytes"]) == sample.data
    for meta, data in rng.sample(written, 40):
        got = ds.get(meta.key)
        assert (got.meta, got.data) == (meta, data)
    assert manifest["stats"]["num_samples"] == 300
    assert manifest["total_bytes"] == sum(os.path.getsize(tmp_path / "ds" / s["name"]) for s in manifest["shards"])


def test_shards_are_standard_tars_with_fixed_member_metadata(tmp_path):
    write_blobs(tmp_path / "ds", [10, 2000, 0], max_shard_bytes=1_000_000)
    with tarfile.open(tmp_path / "ds" / "shards" / "shard-000000.tar") as tar:
        members = tar.getmembers()
    assert [m.name.split(".")[1] for m in members] == ["jpg", "json"] * 3
    assert {(m.mode, m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {
        (MEMBER_MODE, FIXED_MTIME, 0, 0, "", "")
    }


def test_webdataset_reads_the_shards(tmp_path):
    import webdataset as wds

    written, manifest = write_blobs(tmp_path / "ds", [100 * i for i in range(30)], max_shard_bytes=20_000)
    urls = [str(tmp_path / "ds" / s["name"]) for s in manifest["shards"]]
    got = [(s["__key__"], s["jpg"], json.loads(s["json"])["sha256"]) for s in wds.WebDataset(urls, shardshuffle=False)]
    assert got == [(m.key, d, m.sha256) for m, d in written]


@pytest.mark.parametrize("bound", [4096, 5000, 8192, 100_000])
def test_byte_bound_holds_exactly(tmp_path, bound):
    rng = random.Random(bound)
    sizes = [rng.randrange(0, 1500) for _ in range(200)]
    _, manifest = write_blobs(tmp_path / "ds", sizes, max_shard_bytes=bound)
    real = [os.path.getsize(tmp_path / "ds" / s["name"]) for s in manifest["shards"]]
    assert real == [s["nbytes"] for s in manifest["shards"]]
    assert max(real) <= bound
    assert sum(s["num_samples"] for s in manifest["shards"]) == 200


def test_a_shard_fills_to_the_last_byte(tmp_path):
    # Two samples of 512 data bytes and 512 json bytes cost 4 x 1024; with the end blocks the
    # shard is 5120 bytes: a bound of 5120 holds both, 5119 forces a second shard.
    from shards.format.writer import sample_cost

    meta, data = blob_sample(0, 512, random.Random(0))
    cost = sample_cost(meta, meta.to_json_bytes())
    _, exact = write_blobs(tmp_path / "a", [512, 512], max_shard_bytes=2 * cost + 1024)
    _, under = write_blobs(tmp_path / "b", [512, 512], max_shard_bytes=2 * cost + 1023)
    assert (exact["num_shards"], under["num_shards"]) == (1, 2)
    assert exact["shards"][0]["nbytes"] == 2 * cost + 1024


def test_same_input_gives_same_shard_bytes(tmp_path):
    sizes = [300, 7000, 1, 12345]
    write_blobs(tmp_path / "a", sizes, 20_000, seed=7)
    write_blobs(tmp_path / "b", sizes, 20_000, seed=7)
    shards_a = sorted((tmp_path / "a" / "shards").iterdir())
    assert len(shards_a) > 1
    for path in shards_a:
        assert path.read_bytes() == (tmp_path / "b" / "shards" / path.name).read_bytes()


def test_writer_refuses_bad_samples_and_existing_datasets(tmp_path):
    meta, data = blob_sample(0, 100, random.Random(0))
    with DatasetWriter(tmp_path / "ds", WriterConfig(max_shard_bytes=4096)) as writer:
        writer.add(meta, data)
        with pytest.raises(FormatError, match="duplicate sample key"):
            writer.add(meta, data)
        with pytest.raises(FormatError, match="nbytes says 100"):
            writer.add(blob_sample(1, 100, random.Random(0))[0], data + b"x")
        big, big_data = blob_sample(2, 5000, random.Random(0))
        with pytest.raises(FormatError, match="more than the shard bound"):
            writer.add(big, big_data)
        writer.finalize()
    with pytest.raises(DatasetError, match="already holds a dataset"):
        DatasetWriter(tmp_path / "ds")
    assert len(Dataset(str(tmp_path / "ds"))) == 1  # the refused writer touched nothing


def test_an_exception_inside_the_writer_leaves_no_partial_files(tmp_path):
    with pytest.raises(RuntimeError), DatasetWriter(tmp_path / "ds", WriterConfig(max_shard_bytes=4096)) as writer:
        for i in range(5):
            writer.add(*blob_sample(i, 700, random.Random(i)))
        raise RuntimeError("boom")
    leftovers = {p.name for p in (tmp_path / "ds").rglob("*") if p.is_file()}
    assert not any(name.endswith(".tmp") for name in leftovers)
    assert "dataset.json" not in leftovers and "index.parquet" not in leftovers
    with pytest.raises(DatasetError, match="no dataset.json"):
        Dataset(str(tmp_path / "ds"))


KILLED_WRITER = textwrap.dedent(
    """
    import random, sys, time
    sys.path.insert(0, {tests!r})
    from test_writer import blob_sample
    from shards import DatasetWriter, WriterConfig
    writer = DatasetWriter({root!r}, WriterConfig(max_shard_bytes=200_000))
    for i in range(10**6):
        writer.add(*blob_sample(i, 30_000, random.Random(i)))
        if i == 20:
            print("writing", flush=True)
    """
)


def test_kill_during_writing_leaves_nothing_under_a_final_name_that_is_incomplete(tmp_path):
    root = tmp_path / "ds"
    code = KILLED_WRITER.format(tests=os.path.dirname(__file__), root=str(root))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (root / "dataset.json").exists() and not (root / "index.parquet").exists()
    finished = sorted((root / "shards").glob("*.tar"))
    assert finished, "the writer should have completed some shards before the kill"
    for shard in finished:  # every file under a final name is a whole tar, ending properly
        with tarfile.open(shard) as tar:
            assert len(tar.getmembers()) % 2 == 0
        assert shard.read_bytes()[-1024:] == b"\0" * 1024
    # A new writer into the same folder starts clean: no strays from the killed run survive.
    written, manifest = write_blobs(root, [10, 20], 8192)
    assert sorted(p.name for p in (root / "shards").iterdir()) == ["shard-000000.tar"]
    assert [s.key for s in Dataset(str(root)).iter_samples()] == [m.key for m, _ in written]
