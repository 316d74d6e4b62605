"""The StyleGAN3-T synthesis network (generator.py, synthesis_plan.py, resample.py) against its
design: the published layer plan and parameter count, aligned resampling, patches that are the
same area of a larger render, tiles that join, and the input's band limit at every scale."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch

from plumbing.errors import ConfigError
from training.geometry import patch_transform
from training.networks.generator import Generator
from training.networks.render import render_full
from training.networks.resample import down_matrix, lowpass, up_matrix
from training.networks.synthesis_plan import grid_sizes, plan_synthesis, synthesis_params
from training.run.config import PRESETS

from .gan_helpers import TINY_G

# Exact grids: a patch is the same arithmetic as the matching crop of a larger render, in another
# order; only float32 rounding differs.
EXACT = 1e-5
# Offsets that are not multiples of the input spacing sample every grid elsewhere: the difference
# is the network's own aliasing, measured at 1.2e-4 of the image's spread (odd whole pixels) and
# 2e-6 (subpixel shifts) for the random tiny network below; the bound leaves a factor of 8.
SUBPIXEL = 1e-3
# StyleGAN3's grids pad with zeros: pixels near a patch's border feel it (measured 2.1e-3 of the
# spread).
PADDED = 0.02


def randomized(g: Generator, seed: int = 0) -> Generator:
    """Random weights everywhere, the zero-initialised scale layers included."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if "scale_affine" in name or name.startswith("embed"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return g.eval()


@pytest.fixture(scope="module")
def tiny() -> Generator:
    torch.manual_seed(0)
    return randomized(Generator(PRESETS["tiny"].g))


def render(g: Generator, ws: torch.Tensor, scale: float, n: int, cu: float, cv: float, grid: str = "exact"):
    t = torch.from_numpy(patch_transform(scale, cu, cv, n))[None].float()
    with torch.no_grad():
        return g.synthesis(ws, t, torch.tensor([float(scale)]), n, grid=grid)


def test_the_plan_is_stylegan3_t_at_256():
    plan = plan_synthesis(256)
    assert len(plan.layers) == 15 and plan.layers[-1].torgb  # 14 layers, then toRGB
    assert [layer.out_rate for layer in plan.layers[:3]] == [16, 16, 16]
    assert [layer.out_rate for layer in plan.layers[-4:]] == [256, 256, 256, 256]
    assert plan.layers[0].in_channels == 512 and plan.layers[-2].out_channels == 128
    input_side, sides = grid_sizes(plan, 256, "stylegan3")
    assert input_side == 36  # 16 samples + 10 per side, growing from 36 px
    assert [s.output for s in sides[-3:]] == [276, 256, 256]


def test_synthesis_parameters_are_stylegan3_ts_published_count():
    """By the published formula: 27.9 M at channel_base 32768 and 22.8 M at 16384 (w_dim 512);
    sg3t-256's synthesis (its scale branch aside) is within 2% of the first."""
    assert synthesis_params(plan_synthesis(256), 512) == pytest.approx(27.9e6, rel=0.002)
    assert synthesis_params(plan_synthesis(256, channel_base=16384), 512) == pytest.approx(22.8e6, rel=0.002)
    cfg = PRESETS["sg3t-256"].g
    g = Generator(cfg)
    ours = sum(p.numel() for name, p in g.named_parameters()
               if not (name.startswith(("mapping.", "embed.")) or "scale_affine" in name))
    assert ours == pytest.approx(synthesis_params(plan_synthesis(256), 512), rel=0.02)


def test_lowpass_keeps_its_band_and_stops_above_the_stopband():
    spec = plan_synthesis(256).layers[12]
    h = lowpass(6 * spec.up, spec.in_cutoff, spec.in_half_width, spec.tmp_rate)
    n = np.arange(len(h)) - (len(h) - 1) / 2
    gain = lambda f: abs(np.sum(h * np.exp(-2j * np.pi * f / spec.tmp_rate * n)))  # noqa: E731
    assert abs(gain(0) - 1) < 1e-9 and gain(spec.in_cutoff - spec.in_half_width) > 0.95
    assert abs(gain(spec.in_cutoff) - 0.5) < 0.05  # the cutoff is the transition's middle
    assert gain(spec.in_cutoff + spec.in_half_width) < 0.05  # the stopband


def _phase_and_gain(y: np.ndarray, x: np.ndarray, f: float) -> tuple[float, float]:
    """Least-squares fit y = a sin(2 pi f x) + b cos(2 pi f x): (phase offset, amplitude)."""
    basis = np.stack([np.sin(2 * np.pi * f * x), np.cos(2 * np.pi * f * x)], 1)
    (a, b), *_ = np.linalg.lstsq(basis, y, rcond=None)
    return math.atan2(b, a), math.hypot(a, b)


@pytest.mark.parametrize("factor", [2, 4])
def test_resampling_keeps_a_band_limited_signal_on_every_grid(factor):
    """A slow sinusoid on a centred grid, resampled, is the same sinusoid on the other grid, in
    phase: a grid misaligned by half a fine sample would show a phase error of pi f / factor."""
    f = 0.05  # cycles per coarse sample: inside the band
    h = lowpass(6 * factor, 0.25, 0.1, factor)  # cutoff and half-width in cycles per coarse sample
    side, fine_side = 40, factor * (40 - 5) - 4
    x = np.arange(side) - (side - 1) / 2  # coarse samples, in coarse units
    xf = (np.arange(fine_side) - (fine_side - 1) / 2) / factor
    phase, gain = _phase_and_gain(up_matrix(h, side, fine_side, factor) @ np.sin(2 * np.pi * f * x), xf, f)
    assert abs(phase) < 1e-6 < math.pi * f / factor and abs(gain - 1) < 0.05
    coarse_side = (fine_side - 6 * factor) // factor - 1
    coarse_side -= coarse_side % 2
    xc = np.arange(coarse_side) - (coarse_side - 1) / 2
    phase, gain = _phase_and_gain(down_matrix(h, fine_side, coarse_side, factor) @ np.sin(2 * np.pi * f * xf), xc, f)
    assert abs(phase) < 1e-6 and abs(gain - 1) < 0.05
    with pytest.raises(ValueError, match="too small"):
        up_matrix(h, side, factor * (side - 5) + 2, factor)


@pytest.mark.parametrize("up, factor", [(True, 2), (True, 4), (False, 2), (False, 4)])
def test_polyphase_convolutions_apply_the_same_matrices(monkeypatch, up, factor):
    """The GPU's form of the resampling (polyphase depthwise convolutions) against the dense one,
    on non-square maps of sides around the switch-over."""
    import training.networks.resample as resample

    h = lowpass(6 * factor, 0.2 * factor, 0.1 * factor, 2 * factor)
    step = resample.Resampler(h, factor, up)
    x = torch.randn(2, 5, 70, 70, dtype=torch.float64)
    side = factor * (70 - 5) - 6 if up else (70 - 6 * factor) // factor - 2
    monkeypatch.setattr(resample, "STRATEGY", "dense")
    dense = step(x, side)
    monkeypatch.setattr(resample, "STRATEGY", "polyphase")
    assert torch.allclose(step(x, side), dense, atol=1e-12)
    monkeypatch.setattr(resample, "STRATEGY", "auto")
    assert torch.equal(step(x, side), dense)  # auto on a CPU: dense
    with pytest.raises(ValueError, match="too small"):
        monkeypatch.setattr(resample, "STRATEGY", "polyphase")
        step(x, 2 * side)


@pytest.mark.parametrize("x0, y0", [(0, 0), (32, 64), (48, 16), (37, 5), (95, 91)])
def test_a_patch_is_the_same_area_of_a_larger_render(tiny, x0, y0):
    """Any whole-pixel offset, on or off the input grid's 2 px spacing, edges included."""
    ws = tiny.mapping(torch.randn(1, tiny.cfg.z_dim, generator=torch.Generator().manual_seed(1)))
    s, n, big_n = 128.0, 32, 128
    big = render(tiny, ws, s, big_n, 0.0, 0.0)
    patch = render(tiny, ws, s, n, (x0 + n / 2) / s - 0.5, (y0 + n / 2) / s - 0.5)
    crop = big[:, :, y0:y0 + n, x0:x0 + n]
    assert big.std() > 0.02
    assert (patch - crop).abs().max() < EXACT + SUBPIXEL * big.std() * ((x0 % 2) + (y0 % 2) > 0)


@pytest.mark.parametrize("dx, dy", [(0.5, 0.25), (0.3, 0.7)])
def test_a_patch_at_a_subpixel_offset_matches_a_shifted_render(tiny, dx, dy):
    ws = tiny.mapping(torch.randn(1, tiny.cfg.z_dim, generator=torch.Generator().manual_seed(2)))
    s, n = 96.0, 32
    big = render(tiny, ws, s, 96, dx / s, dy / s)  # the whole canvas, shifted by (dx, dy) px
    patch = render(tiny, ws, s, n, (32 + dx + n / 2) / s - 0.5, (32 + dy + n / 2) / s - 0.5)
    assert (patch - big[:, :, 32:64, 32:64]).abs().max() < SUBPIXEL * big.std()


def test_tiles_of_a_4r_render_join_without_seams(tiny):
    ws = tiny.mapping(torch.randn(2, tiny.cfg.z_dim, generator=torch.Generator().manual_seed(3)))
    r = tiny.cfg.resolution
    with torch.no_grad():
        whole = render_full(tiny, ws, 4 * r)
        tiled = render_full(tiny, ws, 4 * r, tile=r)
    assert tiled.shape == (2, 3, 4 * r, 4 * r)
    assert (whole - tiled).abs().max() < EXACT
    step = (tiled[..., 1:] - tiled[..., :-1]).abs()  # between neighbouring columns
    borders = step[..., [r - 1, 2 * r - 1, 3 * r - 1]]
    inside = step[..., [c for c in range(4 * r - 1) if (c + 1) % r]]
    assert borders.max() <= 1.5 * inside.max()
    assert borders.mean() <= 1.5 * inside.mean()


def test_stylegan3_grids_differ_from_exact_ones_only_near_the_border(tiny):
    ws = tiny.mapping(torch.randn(1, tiny.cfg.z_dim, generator=torch.Generator().manual_seed(4)))
    exact = render(tiny, ws, 64.0, 32, 0.1, -0.2, "exact")
    padded = render(tiny, ws, 64.0, 32, 0.1, -0.2, "stylegan3")
    assert (exact - padded).abs().max() < PADDED * exact.std()


def test_the_input_keeps_its_band_at_every_scale():
    """StyleGAN3's amplitude ramp, in canvas cycles: at S = R the input grid's Nyquist is 8 cycles
    per canvas, so no feature of the 2-cycle band is faded; rendered at S < R some would alias."""
    g = Generator(TINY_G)
    eye = torch.eye(3)[None].repeat(2, 1, 1)
    with torch.no_grad():
        x = g.input(eye, torch.tensor([16.0, 4.0]), 16, 20)
    assert x[0].abs().max() > 0.1
    amp = (1 - (g.input.freqs.norm(dim=1) - 2) / (16 * 16 / 32 - 2)).clamp(0, 1)
    assert torch.all(amp == 1)
    # Far below R (S = R/8: Nyquist 1 cycle per canvas) features above the Nyquist are off, the
    # ones below it on: never the other way round, never NaN.
    with torch.no_grad():
        tiny = g.input(eye[:1], torch.tensor([2.0]), 16, 20)
        g.input.weight.copy_(torch.eye(g.input.weight.shape[0]) * g.input.weight.shape[0] ** 0.5)
        raw = g.input(eye[:1], torch.tensor([2.0]), 16, 20)
    assert torch.isfinite(tiny).all()
    above = g.input.freqs.norm(dim=1) > 1.0
    assert raw[0, above].abs().max() == 0 and raw[0, ~above].abs().max() > 0


def test_running_averages_move_only_in_training_steps():
    g = Generator(TINY_G)
    z = torch.randn(4, TINY_G.z_dim)
    t = torch.eye(3)[None].repeat(4, 1, 1)
    s = torch.full((4,), 16.0)
    buffers = [avg.buffer for avg in g.running_averages()]
    before = [b.clone() for b in buffers]
    with torch.no_grad():
        g(z, t, s)
        g.commit_running_averages()
    assert all(torch.equal(a, b) for a, b in zip(before, buffers))
    chunked = copy.deepcopy(g)
    first = g(z, t, s, update_avg=True)
    assert all(torch.equal(a, b) for a, b in zip(before, buffers))  # not within the step
    g.commit_running_averages()
    assert all(not torch.equal(a, b) for a, b in zip(before, buffers))
    # Two chunks of two read the same network and commit what one batch of four does.
    halves = [chunked(z[i:i + 2], t[i:i + 2], s[i:i + 2], update_avg=True) for i in (0, 2)]
    assert torch.allclose(torch.cat(halves), first, atol=1e-5)
    chunked.commit_running_averages()
    for a, b in zip(buffers, (avg.buffer for avg in chunked.running_averages())):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)


def test_bad_sizes_and_configs_are_one_line_errors():
    g = Generator(TINY_G)
    with pytest.raises(ValueError, match="multiple of 2"):
        g.synthesis(g.mapping(torch.randn(1, 16)), torch.eye(3)[None], torch.tensor([16.0]), 15)
    with pytest.raises(ConfigError, match="power of two"):
        dataclasses.replace(TINY_G, resolution=24)
    with pytest.raises(ConfigError, match="grid"):
        dataclasses.replace(TINY_G, grid="padded")
    with pytest.raises(ConfigError, match="multiples of"):
        base = PRESETS["tiny"]
        dataclasses.replace(base, loader=dataclasses.replace(base.loader, stream=dataclasses.replace(
            base.loader.stream, size=30, s_min=32)), d=dataclasses.replace(base.d, resolution=30))


def test_flops_and_sizes_are_finite_for_large_renders():
    plan = plan_synthesis(32, 6, 2, channel_base=512, channel_max=32)
    side, sides = grid_sizes(plan, 1024)
    assert sides[-1].output == 1024 and side > 1024 // 2 and math.isfinite(side)


def test_the_grid_flag_reaches_the_generator_config(tmp_path):
    from training.commands.train import build_parser
    from training.commands.train_flags import config_from_args

    base = ["train", "--data", "d", "--out", str(tmp_path)]
    assert config_from_args(build_parser().parse_args(base)).g.grid == "stylegan3"  # the paper's, by default
    assert config_from_args(build_parser().parse_args([*base, "--grid", "exact"])).g.grid == "exact"
