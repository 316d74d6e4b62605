"""What stage 2 reads and how (issue 12): --s-min reaches the patch stream, --data-hr feeds it from
a separate dataset checked like --data, --mirror flips patches with T following the flip (checked
on pixels that encode their own coordinates, and against a mirrored image), and loader workers
default to what the device wants."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

from plumbing.errors import ConfigError
from tests.factories import encode, textured
from training import checkpoint, dist
from training.commands.train_flags import config_from_args
from training.errors import TrainingError
from training.geometry import Canvas, PatchDraw, draw_patch
from training.loader.decode import decode, oriented, render_patch, render_reference
from training.loader.pipeline import LoaderConfig, PatchLoader
from training.loader.sampler import StreamConfig, draw_patches
from training.run.config import PRESETS
from training.run.loop import make_streams, train
from training.run.validate import open_datasets

from .gan_helpers import gan_dataset
from .helpers import stored_for
from .test_decode import coordinate_maps, expected_coordinates

CPU = dist.World(0, 1, torch.device("cpu"), False)


def preset_config(data: Path, out: Path, stream: dict | None = None, **overrides):
    """The tiny preset (R = p = 32) on a short schedule: 5 steps of 8 images a tick."""
    base = PRESETS["tiny"]
    loader = dataclasses.replace(base.loader, data=str(data), batch_size=8, shuffle_buffer=32, shuffle_initial=16,
                                 stream=dataclasses.replace(base.loader.stream, **(stream or {})))
    settings = {"tick_kimg": 0.04, "snap_ticks": 2, "kimg": 0.08, **overrides}
    return dataclasses.replace(base, out=str(out), loader=loader, **settings)


def parse(*argv: str):
    from training.commands.train import build_parser

    return config_from_args(build_parser().parse_args(["train", *argv]))


# --s-min ---------------------------------------------------------------------------------------


def test_s_min_defaults_to_r_and_reaches_the_patch_stream(tmp_path):
    data = gan_dataset(tmp_path / "ds", n=4, size=(96, 80))
    default = parse("--data", str(data), "--out", str(tmp_path / "run"), "--stage", "patch")
    assert default.loader.stream.min_scale == max(default.resolution, default.patch_size) == 32
    cfg = parse("--data", str(data), "--out", str(tmp_path / "run"), "--stage", "patch", "--s-min", "64")
    assert cfg.loader.stream.s_min == 64.0
    streams = make_streams(cfg, CPU, open_datasets(cfg)[0])
    assert streams["patch"].loader.config.stream.min_scale == 64.0
    batch = streams["patch"].next()
    assert batch.scale.min() >= 64 and torch.allclose(batch.transform[:, 0, 0].double(), 32 / batch.scale, atol=1e-6)
    assert set(streams["global"].next().scale.tolist()) == {32.0}  # the global stream stays at R
    for s in streams.values():
        s.close()


def test_s_min_below_r_is_a_config_error():
    cfg = PRESETS["tiny"]
    small_p = dataclasses.replace(cfg.loader, stream=StreamConfig("patch", size=16, s_min=24))
    with pytest.raises(ConfigError, match="below the base resolution R = 32"):
        dataclasses.replace(cfg, loader=small_p, d=dataclasses.replace(cfg.d, resolution=16, base_resolution=16))


# --data-hr -------------------------------------------------------------------------------------


@pytest.fixture
def low_and_high(tmp_path):
    """A low-resolution dataset (every canvas 40 px: enough for R = 32, not for S = 64) and a
    high-resolution one (canvases of 96 px)."""
    return gan_dataset(tmp_path / "low", n=6, size=(48, 40)), gan_dataset(tmp_path / "high", n=4, size=(96, 112))


def test_patches_come_from_the_hr_dataset_and_canvases_from_data(low_and_high, tmp_path):
    low, high = low_and_high
    cfg = preset_config(low, tmp_path / "run", {"s_min": 64}, stage="patch", data_hr=str(high))
    dataset, hr = open_datasets(cfg)
    assert hr is not None and cfg.patch_data == str(high)
    streams = make_streams(cfg, CPU, dataset, hr)
    patch, whole = streams["patch"].next(), streams["global"].next()
    assert patch.native_size.tolist() == [[96, 112]] * 8 and patch.scale.min() >= 64
    assert whole.native_size.tolist() == [[48, 40]] * 8
    for s in streams.values():
        s.close()
    alone = make_streams(cfg, CPU, dataset)["patch"]  # a library caller: the loader opens --data-hr itself
    assert alone.next().native_size.tolist() == [[96, 112]] * 8
    alone.close()


def test_the_patch_dataset_is_checked_for_s_min_like_data(low_and_high, tmp_path):
    low, high = low_and_high
    cfg = preset_config(low, tmp_path / "run", {"s_min": 64}, stage="patch")
    with pytest.raises(TrainingError, match=r"dataset .*low is too small .* 64 px \(s_min=64, p=32\); its largest is 40"):
        open_datasets(cfg)  # without --data-hr, the patches would come from canvases of 40 px
    with pytest.raises(TrainingError, match=r"--data-hr dataset .*low is too small .* 64 px"):
        open_datasets(dataclasses.replace(cfg, data_hr=str(low)))
    with pytest.raises(TrainingError, match=r"cannot read --data-hr dataset .*missing"):
        open_datasets(dataclasses.replace(cfg, data_hr=str(tmp_path / "missing")))
    tiny = gan_dataset(tmp_path / "tiny", n=2, size=(24, 24))
    with pytest.raises(TrainingError, match=r"dataset .*tiny is too small .* 32 px \(R=32\)"):
        # the global stream still reads --data, at R, whatever --data-hr holds
        open_datasets(preset_config(tiny, tmp_path / "run", {"s_min": 64}, stage="patch", data_hr=str(high)))
    with pytest.raises(ConfigError, match="needs --stage patch"):
        dataclasses.replace(cfg, stage="global", data_hr=str(high))


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_a_run_on_an_hr_dataset_with_flips_resumes_exactly(low_and_high, tmp_path):
    low, high = low_and_high
    train(preset_config(low, tmp_path / "stage1", kimg=0.008, tick_kimg=0.008))
    teacher = str(tmp_path / "stage1" / checkpoint.CHECKPOINT)

    def stage2(out: str, kimg: float, resume: bool = False):
        # Ticks of 2 steps: the streams' positions, flips included, over two datasets, with ADA on.
        return preset_config(low, tmp_path / out, {"s_min": 64, "mirror": True}, stage="patch", data_hr=str(high),
                             teacher=teacher, patch_prob=0.5, kimg=kimg, tick_kimg=0.016, resume=resume)

    train(stage2("whole", 0.048))
    train(stage2("broken", 0.032))
    train(stage2("broken", 0.048, resume=True))
    whole, broken = ([json.loads(line) for line in (tmp_path / run / "stats.jsonl").read_text().splitlines()]
                     for run in ("whole", "broken"))
    assert [r["step"] for r in whole] == [2, 4, 6]
    drop = ("sec_per_kimg", "images_per_sec")
    assert [{k: v for k, v in r.items() if k not in drop} for r in broken] == \
        [{k: v for k, v in r.items() if k not in drop} for r in whole]
    assert whole[-1]["loader"]["patch/patches"] > 0 and whole[-1]["loader"]["global/patches"] > 0
    saved = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert saved["data_hr"] == str(high) and saved["loader"]["stream"]["mirror"] is True
    a, b = (checkpoint.load(tmp_path / run / checkpoint.CHECKPOINT)["trainer"] for run in ("whole", "broken"))
    for net in ("G", "G_ema", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])


# --mirror --------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", [1, 6])
@pytest.mark.parametrize("reduction", [1, 4])
def test_mirrored_patch_pixels_come_from_where_its_transform_says(orientation, reduction):
    """On pixels that hold their own display coordinates: the flipped patch's pixel i shows the
    native point that T (on the mirrored canvas, u -> -u) gives for pixel i."""
    width, height = 301, 203
    maps = coordinate_maps(width, height, orientation, reduction)
    rng = np.random.default_rng(orientation * 10 + reduction)
    for _ in range(20):
        draw = dataclasses.replace(draw_patch(width, height, 16, rng, s_min=16, s_max=height / reduction),
                                   mirror=True)
        t = draw.transform()
        assert t[0, 2] == -draw.cu and t[1, 2] == draw.cv
        ex, ey = expected_coordinates(draw)
        assert np.all(np.diff(ex, axis=1) < 0)  # x falls from left to right: the window, flipped
        pixel = draw.canvas.n / draw.scale
        assert np.abs(render_patch(maps[0], draw, rgb=False) - ex).max() <= 0.5 * pixel
        assert np.abs(render_patch(maps[1], draw, rgb=False) - ey).max() <= 0.5 * pixel


@pytest.mark.parametrize("path", ["fast", "reference"])
@pytest.mark.parametrize("orientation", [1, 6])
def test_a_flipped_patch_is_the_mirrored_image_at_the_transformed_window(path, orientation):
    """The flip and the transform together mean what they should: the mirrored image, seen
    through T as an unmirrored patch, has the same pixels."""
    width, height = 240, 180
    image = textured(width, height, 3)
    mirrored = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    decoded = decode(encode(stored_for(image, orientation), "PNG", orientation=orientation), orientation)
    decoded_m = decode(encode(mirrored, "PNG"), 1)

    def render(d, drawn):
        return render_patch(d, drawn) if path == "fast" else render_reference(oriented(d), drawn)

    rng = np.random.default_rng(orientation)
    for _ in range(15):
        # S of at least N/2: no box reduction, whose blocks start at the crop's left edge either way
        draw = dataclasses.replace(draw_patch(width, height, 24, rng, s_min=91), mirror=True)
        t, c = draw.transform(), draw.canvas
        seen = PatchDraw(Canvas(width - c.ox - c.n, c.oy, c.n), draw.scale, t[0, 2], t[1, 2], draw.size)
        assert np.array_equal(seen.transform(), t)
        got, want = render(decoded, draw).astype(int), render(decoded_m, seen).astype(int)
        assert np.abs(got - want).max() <= 1
        unflipped = render(decoded, dataclasses.replace(draw, mirror=False))
        assert np.array_equal(got, unflipped[:, ::-1])


def test_a_mirrored_global_view_keeps_t_the_identity_and_flips_the_pixels():
    image = textured(64, 48, 1)
    decoded = decode(encode(image, "PNG"), 1)
    rng = np.random.default_rng(0)
    draws = [d for _ in range(20) for d in draw_patches(64, 48, StreamConfig("global", size=32, mirror=True), rng)]
    flipped = [d for d in draws if d.mirror]
    assert 0 < len(flipped) < len(draws)
    for d in flipped:
        assert np.array_equal(d.transform(), np.eye(3))
        plain = render_patch(decoded, dataclasses.replace(d, mirror=False))
        assert np.array_equal(render_patch(decoded, d), plain[:, ::-1])


def test_flips_are_fair_coins_from_the_seeded_rng_and_cost_nothing_when_off():
    config = StreamConfig(size=32, patches_per_image=4)
    flips = StreamConfig(size=32, patches_per_image=4, mirror=True)
    a = draw_patches(400, 300, flips, np.random.default_rng(5))
    b = draw_patches(400, 300, config, np.random.default_rng(5))
    # The same windows (the coins come after them), and the same flips again from the same seed.
    assert [dataclasses.replace(d, mirror=False) for d in a] == b
    assert a == draw_patches(400, 300, flips, np.random.default_rng(5))
    rng = np.random.default_rng(1)
    n = sum(d.mirror for _ in range(500) for d in draw_patches(400, 300, flips, rng))
    assert stats.binomtest(n, 2000).pvalue > 0.01


def test_loader_batches_carry_the_flip_and_replay_identically(tmp_path):
    data = gan_dataset(tmp_path / "ds", n=8, size=(64, 48))
    config = LoaderConfig(str(data), StreamConfig(size=16, mirror=True), batch_size=8, shuffle_buffer=8, seed=3)
    first, again = (list(PatchLoader(config, 0, 1)) for _ in range(2))
    mirror = torch.cat([b.mirror for b in first])
    assert mirror.any() and not mirror.all()
    for b in first:
        cu = torch.where(b.mirror, -b.centre[:, 0], b.centre[:, 0])
        assert torch.allclose(b.transform[:, 0, 2].double(), cu, atol=1e-6)
    for x, y in zip(first, again):
        assert torch.equal(x.image, y.image) and torch.equal(x.mirror, y.mirror)


def test_mirror_flag_reaches_both_streams(tmp_path):
    data = gan_dataset(tmp_path / "ds", n=4, size=(64, 48))
    cfg = parse("--data", str(data), "--out", str(tmp_path / "run"), "--stage", "patch", "--mirror")
    streams = make_streams(cfg, CPU, open_datasets(cfg)[0])
    assert all(s.loader.config.stream.mirror for s in streams.values())
    assert not parse("--data", str(data), "--out", str(tmp_path / "run")).loader.stream.mirror


# loader workers ---------------------------------------------------------------------------------


def test_loader_processes_follow_the_device_unless_given():
    assert dist.loader_processes(None, cuda=False, local_ranks=1, cpus=16) == (0, False)
    assert dist.loader_processes(None, cuda=True, local_ranks=1, cpus=16) == (4, True)
    assert dist.loader_processes(None, cuda=True, local_ranks=8, cpus=16) == (1, True)  # 2 cores a rank
    assert dist.loader_processes(None, cuda=True, local_ranks=4, cpus=4) == (0, True)  # no core to spare
    assert dist.loader_processes(3, cuda=False, local_ranks=1, cpus=16) == (3, False)
    assert dist.loader_processes(0, cuda=True, local_ranks=1, cpus=16) == (0, True)


def test_the_cli_resolves_workers_for_this_machine(tmp_path, monkeypatch):
    argv = ("--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = parse(*argv)
    assert (cfg.loader.num_workers, cfg.loader.pin_memory) == (0, False)  # today's default on a CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(dist.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    cfg = parse(*argv)
    assert (cfg.loader.num_workers, cfg.loader.pin_memory) == (4, True)
    assert parse(*argv, "--workers", "1").loader.num_workers == 1
