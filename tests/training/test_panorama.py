"""360° models (issue 13): frames of panoramas across their seam, the cylindrical input, the
cross-frame splice, stage global-360, and `anyres-generate --panorama` whose edges join."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.cli_outcome import run_main
from tests.factories import meta_for, write_dataset
from training import checkpoint
from training.commands.generate import main as generate_main
from training.commands.train import main as train_main
from training.generate.outputs import mapped
from training.generate.tiles import Tiling, render_rows
from training.loader.decode import decode
from training.loader.panorama_frames import draw_frame, render_frame
from training.loader.pipeline import LoaderConfig, PatchLoader
from training.loader.sampler import Skip, StreamConfig, render_sample
from training.networks.cross_frame import spliced_frames
from training.networks.generator import Generator
from training.networks.render import view
from training.run.loop import train

from .gan_helpers import TINY_G, tiny_config
from .generate_helpers import save_snapshot

pytestmark = pytest.mark.usefixtures("one_thread")

FOV = 60.0  # six frames a turn
PANO_G = dataclasses.replace(TINY_G, fov=FOV)


def panorama(width: int = 192, height: int = 32, seed: int = 0) -> np.ndarray:
    """A smooth image whose columns repeat after `width`: a seamless turn."""
    rng = np.random.default_rng(seed)
    x, y = np.arange(width)[None, :, None], np.arange(height)[:, None, None]
    k = rng.integers(1, 5, 3)
    phase = rng.uniform(0, 2 * np.pi, 3)
    img = 127 + 100 * np.sin(2 * np.pi * k * x / width + phase) * np.cos(np.pi * y / height + phase)
    return np.broadcast_to(img, (height, width, 3)).astype(np.uint8)


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def pano_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pano") / "ds"
    blobs = [png(np.full((40, 40, 3), 90, np.uint8))]  # a square photo, first read: not a turn of six frames
    blobs += [png(panorama(seed=i)) for i in range(12)]
    write_dataset(root, blobs)
    return root


def test_a_frame_across_the_seam_is_the_frame_of_the_turned_image():
    image = panorama(seed=3)
    frame = dataclasses.replace(draw_frame(192, 32, 16, FOV, np.random.default_rng(0)), cu=2.8)  # turn: [-3, 3)
    across = render_frame(decode(png(image), 1), image, frame, FOV)
    turned = np.roll(image, 96, axis=1)  # half a turn: u = 2.8 lands at -0.2
    inside = render_frame(decode(png(turned), 1), turned, dataclasses.replace(frame, cu=-0.2), FOV)
    assert np.array_equal(across, inside)
    mirrored = render_frame(decode(png(image), 1), image, dataclasses.replace(frame, mirror=True), FOV)
    assert np.array_equal(mirrored, across[:, ::-1])
    assert dataclasses.replace(frame, mirror=True).transform()[0, 2] == pytest.approx(-2.8)


def test_the_stream_draws_frames_all_around_the_turn_and_counts_the_photos_it_skips(pano_data):
    config = LoaderConfig(str(pano_data), StreamConfig("global-360", size=16, fov=FOV), batch_size=4, seed=0,
                          shuffle_buffer=1, errors="raise")
    loader = PatchLoader(config)
    batches = list(loader)
    centres = torch.cat([b.centre[:, 0] for b in batches]).numpy()
    assert centres.min() >= -3 and centres.max() < 3
    assert np.histogram(centres, bins=6, range=(-3, 3))[0].min() > 0  # every sixth of the turn, the seam's too
    assert all(b.image.shape[1:] == (3, 16, 16) for b in batches)
    assert np.allclose(torch.cat([b.transform for b in batches])[:, 0, 0], 1.0)  # T: one canvas wide, at R
    square = meta_for(png(np.full((40, 40, 3), 90, np.uint8)), "square")
    with pytest.raises(Skip, match="not-panorama: aspect 1.00; a turn of 6 frames"):
        render_sample(square, png(np.full((40, 40, 3), 90, np.uint8)), config.stream, np.random.default_rng(0))


def test_the_cylinder_repeats_exactly_after_a_turn_and_the_plane_keeps_its_features():
    torch.manual_seed(0)
    g = Generator(dataclasses.replace(PANO_G, grid="stylegan3")).eval()
    ws = g.mapping(torch.randn(2, PANO_G.z_dim))
    for grid in ("exact", "stylegan3"):
        here = g.synthesis(ws, *view(2, 16, 16, "cpu", cu=0.3), 16, grid=grid)
        for turns in (-1, 1, 2):
            there = g.synthesis(ws, *view(2, 16, 16, "cpu", cu=0.3 + 6 * turns), 16, grid=grid)
            assert torch.allclose(here, there, atol=1e-6)
        assert not torch.allclose(here, g.synthesis(ws, *view(2, 16, 16, "cpu", cu=1.3), 16, grid=grid))
    plane = Generator(TINY_G)
    assert torch.equal(plane.input.freqs, g.input.freqs) and torch.equal(plane.input.phases, g.input.phases)
    assert "input.tilts" in g.state_dict() and "input.tilts" not in plane.state_dict()


def test_the_splice_shows_the_frame_its_neighbour_and_the_border_between_them():
    torch.manual_seed(1)
    g = Generator(PANO_G).eval()
    z = torch.randn(3, PANO_G.z_dim)
    t, s = view(3, 16, 16, "cpu", cu=2.5)  # the second frame lies across the turn's end

    def render(z, t, s, size, update_avg=False):
        return g(z, t, s, size)

    spliced = spliced_frames(render, z, t, s, 16, torch.tensor([0, 16, 6]))
    first, second = render(z, t, s, 16), render(z, *view(3, 16, 16, "cpu", cu=3.5), 16)
    # The splice renders other batches than these references, and a CPU's kernels may sum a
    # batch in another order (they do on an AMD EPYC): equal to float32 rounding, not bit for bit.
    close = dict(rtol=0, atol=1e-5)
    torch.testing.assert_close(spliced[0], first[0], **close)
    torch.testing.assert_close(spliced[1], second[1], **close)
    torch.testing.assert_close(spliced[2], torch.cat([first[2], second[2]], 2)[:, :, 6:22], **close)
    # The border is where it should be: the first frame's part differs from the second's.
    assert not torch.allclose(first[2][:, :, 6:16], second[2][:, :, 6:16], atol=1e-3)


@pytest.mark.slow  # trains
def test_stage_global_360_trains_resumes_exactly_and_draws_panorama_samples(pano_data, tmp_path):
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    run = dict(stage="global-360", g=PANO_G, kimg=0.16, tick_kimg=0.04, snap_ticks=2)
    train(tiny_config(pano_data, whole, **run))
    train(tiny_config(pano_data, halves, **{**run, "kimg": 0.08}))
    train(tiny_config(pano_data, halves, **run, resume=True))
    records = [[json.loads(line) for line in (r / "stats.jsonl").read_text().splitlines()] for r in (whole, halves)]
    keys = ("step", "loss_G", "loss_D", "D_real", "D_fake", "loader")
    assert [{k: r[k] for k in keys} for r in records[0]] == [{k: r[k] for k in keys} for r in records[1]]
    assert records[0][-1]["loader"]["global/not-panorama"] >= 1
    samples = sorted(whole.glob("samples-*.png"))
    width, height = Image.open(samples[-1]).size
    assert width > 6 * height / 4 > 0  # four turns of six frames (run/grids.py), not the plane's grid
    state = checkpoint.load(whole / checkpoint.CHECKPOINT)
    assert state["config"]["g"]["fov"] == FOV


def test_a_panorama_s_last_column_continues_into_its_first(tmp_path, capsys):
    snapshot = save_snapshot(tmp_path / "network-snapshot-000000.pt", PANO_G)
    out = tmp_path / "pano.png"
    assert run_main(generate_main, [str(snapshot), "--panorama", "--width", "96", "--tile", "32",
                                    "--out", str(out)]) == 0
    pano = np.asarray(Image.open(out)).astype(np.float64)
    assert pano.shape == (16, 96, 3)  # one frame high: W / P
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["panorama"] == {"fov": FOV, "turn": 6.0} and sidecar["canvas"]["u"] == [-3.0, 3.0]
    # The plane rendered twice as wide at the same S: one turn, then the next, exactly alike.
    g = checkpoint.load_generator(snapshot)
    wide = np.concatenate([row.copy() for row in render_rows(g, mapped(g, 0, 1.0), Tiling(192, 16, 32, 16.0), 8)])
    wide = wide.astype(np.float64)
    assert np.abs(wide[:, 48:144] - pano).max() <= 1  # the panorama is the turn centred on u = 0
    assert np.abs(wide[:, 144:192] - pano[:, :48]).max() <= 1  # and the next turn starts where it began
    seam = np.abs(pano[:, -1] - pano[:, 0]).mean()
    steps = np.abs(np.diff(pano, axis=1)).mean(axis=(0, 2))
    assert seam <= np.quantile(steps, 0.95), (seam, np.quantile(steps, 0.95))


@pytest.mark.parametrize("argv, message", [
    (["--panorama", "--zoom"], "--zoom does not apply"),
    (["--panorama", "--size", "64"], "--size does not apply"),
    (["--panorama", "--width", "97"], "not a multiple"),
])
def test_panorama_flags_that_cannot_apply_fail_in_one_line(tmp_path, capsys, argv, message):
    snapshot = save_snapshot(tmp_path / "network-snapshot-000000.pt", PANO_G)
    assert run_main(generate_main, [str(snapshot), *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_plane_model_has_no_panorama(tmp_path, capsys):
    snapshot = save_snapshot(tmp_path / "network-snapshot-000000.pt")
    assert run_main(generate_main, [str(snapshot), "--panorama", "--out", str(tmp_path / "o")]) == 2
    assert "needs a 360° model" in capsys.readouterr().err


def test_stage_global_360_refuses_a_dataset_without_panoramas_and_fov_elsewhere(tmp_path, capsys, pano_data):
    flat = tmp_path / "flat"
    write_dataset(flat, [png(np.full((48, 64, 3), 50, np.uint8))])
    base = ["train", "--out", str(tmp_path / "run"), "--kimg", "0.016"]
    assert run_main(train_main, [*base, "--data", str(flat), "--stage", "global-360"]) == 2
    assert "no 360° panorama" in capsys.readouterr().err
    assert run_main(train_main, [*base, "--data", str(pano_data), "--fov", "90"]) == 2
    assert "--fov is the frame width of --stage global-360" in capsys.readouterr().err
    assert run_main(train_main, [*base, "--data", str(pano_data), "--stage", "global-360", "--fov", "361"]) == 2
    assert "--fov: must be at most 360" in capsys.readouterr().err  # the other bad values: test_flags.py
    teacher = save_snapshot(tmp_path / "network-snapshot-000000.pt", PANO_G)
    assert run_main(train_main, [*base, "--data", str(pano_data), "--stage", "patch", "--teacher", str(teacher)]) == 2
    assert "fov=60.0 (this run: None)" in capsys.readouterr().err  # no patch stage for 360° models
