"""anyres-eval's two sides and its cache (training/eval/sources.py, cache.py, metrics.py), with a
cheap counting feature network: generated patches go through exactly the real patches' T and S,
real statistics are reused from disk and recomputed whenever anything they depend on changes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from shards.format.reader import Dataset
from tests.factories import encode, gradient, write_dataset
from training import checkpoint
from training.errors import TrainingError
from training.eval.cache import StatsCache
from training.eval.metrics import EvalConfig, Evaluator, scale_bin
from training.eval.sources import RealSpec, choose_tile, fake_images, latents, loader_config, upsample_window
from training.loader.pipeline import PatchLoader
from training.networks.render import identity_view

from .eval_helpers import CountingFeatures, write_snapshots
from .gan_helpers import gan_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return gan_dataset(tmp_path_factory.mktemp("eval") / "data", n=12)


@pytest.fixture(scope="module")
def snapshot(data, tmp_path_factory):
    return write_snapshots(data, tmp_path_factory.mktemp("run") / "run", (0.0,))[0]


def load(path):
    state = checkpoint.read(path)
    return checkpoint.build_generator(checkpoint.network_configs(state)[0], state["trainer"]["G_ema"]), state["config"]


def evaluator(data, cache, metrics=("pfid",), features=None, **settings):
    config = EvalConfig(metrics=tuple(metrics), **{"n": 12, "batch": 5, **settings})
    return Evaluator(Dataset(str(data)), features or CountingFeatures(), config, StatsCache(cache))


def test_generated_patches_share_exactly_the_real_patches_transforms(data, snapshot, tmp_path):
    g, run_config = load(snapshot)
    calls = []
    synthesis = g.synthesis

    def spy(ws, transform, scale, size=None, grid=None, **kw):
        calls.append((transform.clone(), scale.clone(), size, grid))
        return synthesis(ws, transform, scale, size, grid=grid, **kw)

    g.synthesis = spy
    rows = evaluator(data, tmp_path / "cache").score(g, run_config)
    assert [r["metric"] for r in rows] == ["pfid"] and rows[0]["value"] > 0
    # The loader's own seeded patch stream, read again independently: the same T and S, in order.
    spec = RealSpec("patch", 16, 12, 0, 16.0, None)
    real_t, real_s = [], []
    for b in PatchLoader(loader_config(str(data), spec, 5), rank=0, world_size=1):
        real_t.append(b.transform)
        real_s.append(b.scale)
    real_t, real_s = torch.cat(real_t)[:12], torch.cat(real_s)[:12]
    assert torch.equal(torch.cat([c[0] for c in calls]), real_t)
    assert torch.equal(torch.cat([c[1] for c in calls]), real_s)
    assert {(c[2], c[3]) for c in calls} == {(16, "exact")}
    assert len(set(real_s.tolist())) > 6 and real_s.min() >= 16 and real_s.max() <= 48  # random scales, native cap
    assert len({tuple(t[:2, 2].tolist()) for t in real_t}) > 6  # and random windows


def test_cached_real_statistics_are_reused_and_invalidated_when_anything_changes(data, snapshot, tmp_path):
    g, run_config = load(snapshot)
    cache = tmp_path / "cache"
    first = evaluator(data, cache, ("pfid", "kid"))
    rows = first.score(g, run_config)
    assert first.computed_reals == 2  # the patch set and the full set at R
    assert len(list(cache.glob("real-*.npz"))) == 2
    calls_with_reals = first.features.calls

    again = evaluator(data, cache, ("pfid", "kid"))
    assert again.score(g, run_config) == rows  # the same numbers, from the cached reals
    assert again.computed_reals == 0
    assert again.features.calls < calls_with_reals  # only the generated sets were embedded

    # A copy of the dataset elsewhere is the same dataset (its root hash): still reused.
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    moved = evaluator(copy, cache, ("pfid",))
    moved.score(g, run_config)
    assert moved.computed_reals == 0

    changed = {
        "n": evaluator(data, cache, ("pfid",), n=10),
        "seed": evaluator(data, cache, ("pfid",), seed=1),
        "s_min": evaluator(data, cache, ("pfid",), s_min=20.0),
        "network": evaluator(data, cache, ("pfid",), features=CountingFeatures("another-network")),
        "size": evaluator(data, cache, ("kid",), size=32),
    }
    other = gan_dataset(tmp_path / "other", n=12, size=(64, 40))  # another dataset: another root hash
    changed["dataset"] = evaluator(other, cache, ("pfid",))
    for what, ev in changed.items():
        ev.score(g, run_config)
        assert ev.computed_reals == 1, what
    assert len(list(cache.glob("real-*.npz"))) == 2 + len(changed)  # never overwritten, never mixed

    # A damaged cache file is drawn afresh, not trusted and not fatal.
    for path in cache.glob("real-*.npz"):
        path.write_bytes(b"garbage")
    damaged = evaluator(data, cache, ("pfid",))
    damaged.score(g, run_config)
    assert damaged.computed_reals == 1


def test_bins_the_proxy_and_the_upsampled_window(data, snapshot, tmp_path):
    g, run_config = load(snapshot)
    rows = evaluator(data, tmp_path / "c", ("pfid-bins", "hf-patch", "hf-patch-up"), n=24).score(g, run_config)
    bins = [r for r in rows if r["metric"] == "pfid-bins"]
    assert [r["bin"] for r in bins] == ["[1,2)", "[2,4)"]  # S in [16, 48] at R = 16
    assert sum(r["n"] for r in bins) == 24 and all(r["value"] >= 0 for r in bins)
    hf = {r["metric"]: r for r in rows if r["metric"].startswith("hf")}
    assert hf["hf-patch"]["real"] == hf["hf-patch-up"]["real"] > 0  # the same real patches
    assert hf["hf-patch"]["ratio"] == pytest.approx(hf["hf-patch"]["value"] / hf["hf-patch"]["real"])
    assert np.array_equal(scale_bin(np.array([16, 31.99, 32, 63.9, 64]), 16), [0, 0, 1, 1, 2])


def test_the_upsampled_window_of_the_identity_is_the_canvas_and_a_zoom_is_a_crop():
    torch.manual_seed(0)
    canvas = torch.rand(2, 3, 16, 16)
    t, _ = identity_view(2, 16, torch.device("cpu"))
    assert torch.allclose(upsample_window(canvas, t, 16), canvas, atol=1e-5)
    # The top-left quarter at S = 2R: its 16 px lie between the centres of the canvas's first 8, so
    # they keep that quarter's mean (another window would not).
    quarter = torch.tensor([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1]]).expand(2, 3, 3)
    zoom = upsample_window(canvas, quarter, 16)
    assert zoom.shape == (2, 3, 16, 16)
    assert torch.allclose(zoom.mean(dim=(2, 3)), canvas[:, :, :8, :8].mean(dim=(2, 3)), atol=0.05)


def test_sizes_the_generator_cannot_render_and_datasets_too_small_are_user_errors(data, snapshot, tmp_path):
    g, run_config = load(snapshot)
    assert choose_tile(96, 2, 32) == 32 and choose_tile(48, 4, 256) == 48 and choose_tile(40, 4, 16) == 8
    for size, message in ((17, "multiple of 2"), (8, "below the generator's base resolution"),
                          (1024, "no image of")):
        with pytest.raises(TrainingError, match=message):
            evaluator(data, tmp_path / "c", ("fid-full",), size=size).score(g, run_config)
    with pytest.raises(TrainingError, match="below R"):
        evaluator(data, tmp_path / "c", ("pfid",), s_min=8.0).score(g, run_config)


def test_full_sets_above_r_read_only_the_images_large_enough(tmp_path):
    root = tmp_path / "mixed"
    write_dataset(root, [encode(gradient(64, 48, seed=i), "PNG") for i in range(3)]
                  + [encode(gradient(120, 100, seed=i), "PNG") for i in range(2)])
    spec = RealSpec("full", 96, 6, 0)
    keys = set()
    for b in PatchLoader(loader_config(str(root), spec, 3), rank=0, world_size=1):
        keys |= set(b.key)
        assert b.image.shape[-1] == 96 and (b.native_size.min(dim=1).values >= 96).all()
    assert len(keys) == 2


def test_full_images_above_r_by_tiles_match_one_pass_and_up_is_the_r_image_enlarged(snapshot):
    g, _ = load(snapshot)
    z = latents(3, g.cfg.z_dim, seed=4)
    tiled, whole = fake_images(g, "full", z, 32, tile=16), fake_images(g, "full", z, 32, tile=32)
    assert tiled.dtype == torch.uint8 and tiled.shape == (3, 3, 32, 32)
    assert (tiled.int() - whole.int()).abs().max() <= 1  # exact grids: tiles are crops of one render
    up, base = fake_images(g, "up", z, 32, tile=32), fake_images(g, "full", z, 16, tile=16)
    assert up.shape == (3, 3, 32, 32)
    # Bicubic 2x: each 2x2 block averages back to about its R pixel.
    blocks = up.double().reshape(3, 3, 16, 2, 16, 2).mean(dim=(3, 5))
    assert (blocks - base.double()).abs().mean() < 3
