"""The streaming loader: distribution over ranks and workers, epochs, reproducibility, failures."""

import dataclasses
import io
import os
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from shards import Dataset, IndexFilter
from shards.format.tario import BLOCK, padded
from tests.factories import encode, gradient, small_dataset, write_dataset
from training.loader.pipeline import LoaderConfig, PatchLoader, PatchStream, make_parts, reader_parts
from training.loader.sampler import StreamConfig

STREAM = StreamConfig(size=16, patches_per_image=1)  # one patch per sample: coverage is exact


def keys_of(batches):
    return [k for b in batches for k in b.key]


def test_two_ranks_two_workers_see_every_sample_once_with_equal_epochs(tmp_path):
    metas = small_dataset(tmp_path / "ds", 16)  # one shard: fewer shards than the 4 readers
    seen, lengths = [], []
    for rank in range(2):
        config = LoaderConfig(str(tmp_path / "ds"), STREAM, batch_size=2, num_workers=2, shuffle_buffer=8)
        loader = PatchLoader(config, rank=rank, world_size=2)
        batches = list(loader)
        lengths.append(len(batches))
        assert len(loader) == len(batches) == 4  # 16 patches / (2 ranks x batch 2)
        assert all(len(b.key) == 2 for b in batches)
        seen += keys_of(batches)
    assert sorted(seen) == sorted(m.key for m in metas)


def test_epoch_length_holds_on_every_rank_whatever_the_shards(tmp_path):
    # 23 samples in uneven shards, 3 ranks x 2 workers: epochs are cut to the same length anyway.
    metas = small_dataset(tmp_path / "ds", 23, max_shard_bytes=40_000)
    shards = Dataset(str(tmp_path / "ds")).shard_names
    assert 3 < len(shards) < 23
    for epoch in range(2):
        for rank in range(3):
            config = LoaderConfig(str(tmp_path / "ds"), STREAM, batch_size=3, epoch_patches=50, shuffle_buffer=4)
            stream = PatchStream(config, rank=rank, world_size=3)
            stream.epoch = epoch
            batches = _iterate_as_workers(stream, workers=2)
            assert len(batches) == 50 // (3 * 3) and all(len(b.key) == 3 for b in batches)
            assert set(keys_of(batches)) <= {m.key for m in metas}


def _iterate_as_workers(stream, workers):
    """What a DataLoader with `workers` workers yields, without processes: each worker's share."""
    from unittest import mock

    batches = []
    for worker in range(workers):
        info = mock.Mock(id=worker, num_workers=workers)
        with mock.patch("training.loader.pipeline.get_worker_info", return_value=info):
            batches += list(stream)
    return batches


def test_readers_split_each_round_of_parts_without_overlap():
    parts = make_parts([f"s{i}" for i in range(7)], readers=4)
    assert len(parts) == 7  # enough shards: no slicing
    got = [list(reader_parts(parts, 0, 0, r, 4, resampled=False)) for r in range(4)]
    assert sorted(p.shard for g in got for p in g) == sorted(p.shard for p in parts)
    # Resampled: every window of 7 consecutive positions is a permutation of the parts.
    seqs = [reader_parts(parts, 0, 0, r, 4, resampled=True) for r in range(4)]
    flat = [next(seqs[i % 4]) for i in range(28)]
    for start in range(0, 28, 7):
        assert sorted(p.shard for p in flat[start:start + 7]) == sorted(p.shard for p in parts)
    assert len(make_parts(["a", "b"], readers=5)) == 6  # 3 slices each: every reader has a part


def test_one_pass_mode_reads_each_sample_once_across_ranks_and_workers(tmp_path):
    metas = small_dataset(tmp_path / "ds", 23, max_shard_bytes=40_000)
    seen = []
    for rank in range(2):
        config = LoaderConfig(str(tmp_path / "ds"), STREAM, batch_size=4, resampled=False, shuffle_buffer=0)
        seen += keys_of(_iterate_as_workers(PatchStream(config, rank=rank, world_size=2), workers=2))
    assert sorted(seen) == sorted(m.key for m in metas)


def test_same_seed_same_batches_other_seed_other_batches(tmp_path):
    small_dataset(tmp_path / "ds", 12, max_shard_bytes=30_000)

    def run(seed):
        config = LoaderConfig(str(tmp_path / "ds"), STREAM, batch_size=4, seed=seed, shuffle_buffer=6)
        return list(PatchLoader(config, rank=0, world_size=1))

    a, b, c = run(0), run(0), run(1)
    assert keys_of(a) == keys_of(b)
    assert all(torch.equal(x.image, y.image) and torch.equal(x.transform, y.transform) for x, y in zip(a, b))
    assert keys_of(a) != keys_of(c) or not all(torch.equal(x.transform, y.transform) for x, y in zip(a, c))
    # Epochs differ from one another, but are reproducible too.
    config = LoaderConfig(str(tmp_path / "ds"), STREAM, batch_size=4, shuffle_buffer=6)
    loader = PatchLoader(config, rank=0, world_size=1)
    first, second = list(loader), list(loader)
    assert not all(torch.equal(x.transform, y.transform) for x, y in zip(first, second))


def test_batches_carry_everything_metrics_need(tmp_path):
    metas = small_dataset(tmp_path / "ds", 4, size=(80, 50))
    config = LoaderConfig(str(tmp_path / "ds"), StreamConfig(size=16, patches_per_image=2), batch_size=8,
                          dtype="float", shuffle_buffer=0)
    (batch,) = list(PatchLoader(config, rank=0, world_size=1))
    assert batch.image.shape == (8, 3, 16, 16) and batch.image.dtype == torch.float32
    assert batch.image.min() >= -1.0 and batch.image.max() <= 1.0
    assert batch.transform.shape == (8, 3, 3) and batch.canvas.shape == (8, 3)
    by_key = {m.key: m for m in metas}
    for i, key in enumerate(batch.key):
        assert tuple(batch.native_size[i].tolist()) == (by_key[key].width, by_key[key].height)
        ox, oy, n = batch.canvas[i].tolist()
        assert n == 50 and oy == 0 and 0 <= ox <= 30
        extent = 16 / batch.scale[i].item()
        assert batch.transform[i, 0, 0].item() == pytest.approx(extent, rel=1e-6)
        assert batch.transform[i, :2, 2].tolist() == pytest.approx(batch.centre[i].tolist(), abs=1e-6)
    assert batch.counts == {"images": 4, "patches": 8}


def corrupt(root, meta, what):
    """Overwrite one sample's image (or json) bytes in place, leaving the tar itself intact."""
    row = Dataset(str(root)).row(meta.key)
    path = root / row["shard"]
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        if what == "image":
            f.seek(row["offset"] + 20)
            f.write(b"\x00garbage" * ((row["nbytes"] - 40) // 8))
        else:
            f.seek(row["offset"] + padded(row["nbytes"]) + BLOCK)
            f.write(b"{not json")


def test_corrupt_samples_mid_shard_are_skipped_and_counted(tmp_path):
    blobs = [encode(gradient(64, 48, seed=i), "JPEG") for i in range(8)]
    metas = write_dataset(tmp_path / "ds", blobs)
    corrupt(tmp_path / "ds", metas[3], "image")
    corrupt(tmp_path / "ds", metas[5], "json")
    config = LoaderConfig(str(tmp_path / "ds"), STREAM, batch_size=1, resampled=False, shuffle_buffer=0)
    loader = PatchLoader(config, rank=0, world_size=1)
    keys = keys_of(list(loader))
    assert sorted(keys) == sorted(m.key for i, m in enumerate(metas) if i not in (3, 5))
    totals = loader.stats.totals()
    assert totals["corrupt-image"] == 1 and totals["bad-metadata"] == 1 and totals["images"] == 6
    with pytest.raises(Exception, match="corrupt-image|cannot identify|broken|truncated"):
        list(PatchLoader(LoaderConfig(str(tmp_path / "ds"), STREAM, resampled=False, errors="raise"), 0, 1))


def test_truncated_shard_is_counted_and_the_rest_still_read(tmp_path):
    metas = small_dataset(tmp_path / "ds", 12, max_shard_bytes=30_000)
    ds = Dataset(str(tmp_path / "ds"))
    victim = tmp_path / "ds" / ds.shard_names[0]
    os.chmod(victim, 0o644)
    victim.write_bytes(victim.read_bytes()[:700])  # mid-header of the second member
    config = LoaderConfig(str(tmp_path / "ds"), STREAM, batch_size=1, resampled=False, shuffle_buffer=0)
    loader = PatchLoader(config, rank=0, world_size=1)
    keys = keys_of(list(loader))
    assert loader.stats.totals()["shard-error"] == 1
    in_other_shards = {m.key for m in metas if ds.row(m.key)["shard"] != ds.shard_names[0]}
    assert in_other_shards <= set(keys)


def test_too_small_images_are_counted_and_a_dataset_with_none_usable_fails_clearly(tmp_path):
    blobs = [encode(gradient(*size, seed=i), "PNG") for i, size in enumerate([(64, 48), (12, 40), (64, 64), (10, 10)])]
    write_dataset(tmp_path / "ds", blobs)
    config = LoaderConfig(str(tmp_path / "ds"), STREAM, batch_size=1, resampled=False, shuffle_buffer=0)
    loader = PatchLoader(config, rank=0, world_size=1)
    assert len(list(loader)) == 2 and loader.stats.totals()["too-small"] == 2
    big = LoaderConfig(str(tmp_path / "ds"), StreamConfig(size=128), batch_size=1)
    with pytest.raises(Exception, match="no usable sample"):
        list(PatchLoader(big, rank=0, world_size=1))


def test_index_selection_restricts_samples_and_skips_shards_without_opening_them(tmp_path):
    blobs = [encode(gradient(*size, seed=i), "PNG") for i, size in enumerate([(64, 48), (200, 150)] * 6)]
    metas = write_dataset(tmp_path / "ds", blobs, max_shard_bytes=60_000)
    config = LoaderConfig(str(tmp_path / "ds"), STREAM, batch_size=1, resampled=False, shuffle_buffer=0,
                          select=IndexFilter(min_side=100))
    stream = PatchStream(config, rank=0, world_size=1)
    big = {m.key for m in metas if m.height >= 100}
    rows = Dataset(str(tmp_path / "ds")).index.to_pylist()
    assert {p.shard for p in stream.parts} == {r["shard"] for r in rows if r["key"] in big}
    loader = PatchLoader(config, rank=0, world_size=1)
    assert sorted(keys_of(list(loader))) == sorted(big)
    assert len(loader) == 6  # the epoch counts selected samples only


def test_reads_a_dataset_over_http(tmp_path, http_server):
    metas = small_dataset(tmp_path / "ds", 6, max_shard_bytes=20_000)
    base, _ = http_server(tmp_path)
    config = LoaderConfig(f"{base}/ds", STREAM, batch_size=2, resampled=False, shuffle_buffer=0)
    assert sorted(keys_of(list(PatchLoader(config, rank=0, world_size=1)))) == sorted(m.key for m in metas)


def test_shuffle_spreads_patches_of_one_decode(tmp_path):
    small_dataset(tmp_path / "ds", 8)
    config = LoaderConfig(str(tmp_path / "ds"), StreamConfig(size=16, patches_per_image=4), batch_size=4,
                          shuffle_buffer=32)
    batches = list(PatchLoader(config, rank=0, world_size=1))
    distinct = [len(set(b.key)) for b in batches]
    assert np.mean(distinct) > 2  # unshuffled, each batch would be a single image
    assert Counter(keys_of(batches)).most_common(1)[0][1] <= 8


def test_area_weighting_draws_patches_in_proportion_to_pixels(tmp_path):
    blobs = [encode(gradient(*size, seed=i), "PNG") for i, size in enumerate([(32, 32), (64, 64)] * 4)]
    metas = write_dataset(tmp_path / "ds", blobs)
    config = LoaderConfig(str(tmp_path / "ds"), STREAM, batch_size=10, epoch_patches=800, shuffle_buffer=0,
                          weight="area")
    loader = PatchLoader(config, rank=0, world_size=1)
    per_key = Counter(keys_of(list(loader)))
    small = sum(per_key[m.key] for m in metas if m.width == 32)
    large = sum(per_key[m.key] for m in metas if m.width == 64)
    assert small + large == 800
    assert 3.4 < large / small < 4.7  # 4x the pixels; 160 expected small patches
    assert loader.stats.totals()["weighted-out"] > 0  # a small image often yields no patch at all


def test_a_forged_shard_feeds_the_loader_nothing_verify_would_refuse(tmp_path):
    # A pax header that renames the next member (verify refuses it): the loader reads shards
    # through the same strict reader, so it counts a shard error instead of taking the forgery.
    from ..shards.hostile import pax_member, rebuild, repin, shard_blobs

    metas = small_dataset(tmp_path / "ds", 12, max_shard_bytes=30_000)
    ds = Dataset(str(tmp_path / "ds"))
    first = [m for m in metas if ds.row(m.key)["shard"] == ds.shard_names[0]]
    blobs = shard_blobs(tmp_path / "ds")
    blobs.insert(1, pax_member({"size": "3", "path": f"{first[0].key}.json"}, name=f"{first[0].key}.json"))
    rebuild(tmp_path / "ds", blobs)
    repin(tmp_path / "ds", sizes=True)
    config = LoaderConfig(str(tmp_path / "ds"), STREAM, batch_size=1, resampled=False, shuffle_buffer=0)
    loader = PatchLoader(config, rank=0, world_size=1)
    keys = keys_of(list(loader))
    assert loader.stats.totals()["shard-error"] == 1
    assert set(keys) == {m.key for m in metas} - {m.key for m in first}


def test_a_progressive_jpeg_of_too_many_scans_is_skipped_before_decoding(tmp_path, monkeypatch):
    from training.loader import decode as decode_module

    monkeypatch.setattr(decode_module, "_LIMITS", dataclasses.replace(decode_module._LIMITS, max_jpeg_scans=3))
    blobs = [encode(gradient(64, 48, seed=i), "JPEG") for i in range(3)]
    progressive = io.BytesIO()
    Image.open(io.BytesIO(blobs[0])).save(progressive, "JPEG", progressive=True)  # about 10 scans
    metas = write_dataset(tmp_path / "ds", [progressive.getvalue(), *blobs[1:]])
    config = LoaderConfig(str(tmp_path / "ds"), STREAM, batch_size=1, resampled=False, shuffle_buffer=0)
    loader = PatchLoader(config, rank=0, world_size=1)
    assert sorted(keys_of(list(loader))) == sorted(m.key for m in metas[1:])
    assert loader.stats.totals()["too-many-scans"] == 1
