"""Detail above R: nothing in training works against it, and it is measured as it should be.

The teacher loss brings a patch to the teacher's resolution with a windowed sinc, so a texture
above the teacher's Nyquist frequency costs almost nothing there while the layout below it is
kept; the loader's global views are antialiased, so such a texture does not alias into R; and
the spectral measures give the power of sinusoids of known amplitude and frequency.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from tests.factories import encode, write_dataset
from training.eval.metrics import spectrum_rows
from training.eval.names import METRICS
from training.eval.spectrum import band_power, grey, imaging_from, octave_edges, tone_power, upsample_lanczos
from training.loader.pipeline import LoaderConfig, PatchLoader
from training.loader.sampler import StreamConfig
from training.networks.losses import masked_l1, to_teacher_frame
from training.networks.render import view

R = P = 32
CPU = torch.device("cpu")
PHASES = torch.linspace(0, 2 * math.pi, 9)[:-1].tolist()


def stripes_patch(freq: float, scale: float, phase: float, along: str = "u", cu: float = 0.1, cv: float = -0.05):
    """A patch at S whose pixels hold sin(2 pi freq x + phase), x the canvas coordinate along u or v."""
    t, s = view(1, scale, P, CPU, cu=cu, cv=cv)
    axis = 0 if along == "u" else 1
    x = t[0, axis, 2] + ((torch.arange(P, dtype=torch.float64) + 0.5) / P - 0.5) * t[0, axis, axis]
    line = torch.sin(2 * math.pi * freq * x + phase).float()
    pixels = line.view(1, 1, 1, P) if along == "u" else line.view(1, 1, P, 1)
    return pixels.expand(1, 3, P, P), t.float(), s.float()


def teacher_canvas(freq: float, phase: float, along: str = "u") -> torch.Tensor:
    c = (torch.arange(R, dtype=torch.float64) + 0.5) / R - 0.5
    line = torch.sin(2 * math.pi * freq * c + phase).float()
    return (line.view(1, 1, 1, R) if along == "u" else line.view(1, 1, R, 1)).expand(1, 3, R, R)


@pytest.mark.parametrize("along", ["u", "v"])
@pytest.mark.parametrize("scale", [2 * R, 4 * R])
@pytest.mark.parametrize("freq", [1.5 * R / 2, 1.75 * R / 2])
def test_a_pattern_above_the_teachers_nyquist_costs_under_two_percent_of_its_amplitude(freq, scale, along):
    costs = []
    for phase in PHASES:
        patch, t, s = stripes_patch(freq, scale, phase, along)
        seen, mask = to_teacher_frame(patch, t, s, R)
        assert mask.sum() > 0
        costs.append(masked_l1(seen, torch.zeros_like(seen), mask).item())
    assert max(costs) < 0.02  # amplitude 1; the area average this replaced cost about 0.25 at 1.5x


@pytest.mark.parametrize("scale", [2 * R, 4 * R, 8 * R])
def test_a_pattern_well_below_the_teachers_nyquist_passes_at_090_or_more(scale):
    for phase in PHASES:
        patch, t, s = stripes_patch(R / 8, scale, phase, "u")
        seen, mask = to_teacher_frame(patch, t, s, R)
        target = teacher_canvas(R / 8, phase)
        gain = (seen * target * mask).sum() / (target * target * mask).sum()
        assert 0.9 <= gain.item() <= 1.1
        assert masked_l1(seen, target, mask).item() < 0.1 * masked_l1(target, torch.zeros_like(target), mask).item()


def textured_png(side: int, freq: float, amplitude: float, phase: float) -> bytes:
    x = (np.arange(side) + 0.5) / side - 0.5
    row = 128 + amplitude * np.sin(2 * np.pi * freq * x + phase)
    return encode(Image.fromarray(np.rint(np.tile(row, (side, 1))).astype(np.uint8)).convert("RGB"), "PNG")


def test_the_global_stream_leaks_under_a_thousandth_of_a_fine_textures_energy_into_r_views(tmp_path):
    amplitude = 40.0
    blobs = [textured_png(256, 1.5 * R / 2, amplitude, phase) for phase in (0.0, 1.0, 2.0, 3.0)]
    write_dataset(tmp_path / "ds", blobs)

    def views(size: int) -> np.ndarray:
        config = LoaderConfig(str(tmp_path / "ds"), StreamConfig("global", size=size), batch_size=4,
                              epoch_patches=8, shuffle_buffer=0, num_workers=0, dtype="uint8")
        return torch.cat([b.image for b in PatchLoader(config, rank=0, world_size=1)]).numpy()

    energy = amplitude**2 / 2
    at_r = grey(views(R))
    # Aliased to 32 - 24 = 8 cycles per canvas: the box reduction this replaced put 10% there.
    assert tone_power(at_r, (R - 1.5 * R / 2) / R, 0.0).max() < 1e-3 * energy
    # Anywhere but the canvas's outer columns, where every resampler's filter is cut off (the
    # reference path's Pillow resize of the whole canvas alike), the view is flat to rounding.
    assert at_r[:, :, 2:-2].var(axis=(1, 2)).max() < 1e-3 * energy
    at_2r = grey(views(2 * R))  # where the texture is below Nyquist, it is kept
    assert at_2r.var(axis=(1, 2)).min() > 0.7 * energy


@pytest.mark.parametrize("freq, angle, amplitude", [(0.1875, 0.3, 10.0), (0.375, 1.2, 5.0), (0.09, 0.0, 20.0)])
def test_the_spectral_measures_give_the_power_of_known_sinusoids(freq, angle, amplitude):
    y, x = np.mgrid[0:P, 0:P] + 0.5
    image = 100 + amplitude * np.sin(2 * np.pi * freq * (x * math.cos(angle) + y * math.sin(angle)) + 0.7)
    expected = amplitude**2 / 2  # the variance a sinusoid adds
    assert tone_power(image[None], freq, angle)[0] == pytest.approx(expected, rel=0.02)
    assert tone_power(image[None], freq, angle + math.pi / 2)[0] < 0.01 * expected  # another direction: none
    bands = band_power(image[None], octave_edges(P))[0]
    assert bands.sum() == pytest.approx(expected, rel=0.02)
    home = np.searchsorted(octave_edges(P), freq, side="right") - 1
    assert bands[home] > 0.85 * expected  # the Hann window spreads a tone over a couple of bins only


def test_octave_bands_run_from_one_cycle_per_patch_to_nyquist():
    assert octave_edges(32).tolist() == [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2]
    assert octave_edges(256)[0] == pytest.approx(1 / 256) and octave_edges(256)[-1] == 0.5
    rgb = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    assert np.allclose(grey(rgb), 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2])


def test_a_set_against_itself_has_a_ratio_of_one_in_every_band():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 3, P, P), dtype=np.uint8)
    arrays = {"spectrum": band_power(grey(images), octave_edges(P)), "scale": np.full(12, 4.0 * R)}
    for name in ("spectrum-patch", "spectrum-patch-up"):
        (row,) = spectrum_rows({"metric": name}, METRICS[name], arrays, arrays, P, R)
        assert row["band_ratio"] == pytest.approx([1.0] * 4) and row["value"] == pytest.approx(1.0)
        assert row["bin"] == "[4,8)" and len(row["bands"]) == 4
    assert row["imaging_from"] == imaging_from(R, 4 * R) == 1 / 8


def test_the_lanczos_upsampler_interpolates_the_canvas_and_adds_little_above_its_nyquist():
    # A smooth canvas: the window at S = 4R matches the same function sampled at S.
    c = (torch.arange(R, dtype=torch.float64) + 0.5) / R - 0.5
    canvas = torch.cos(2 * math.pi * 3 * c).view(1, 1, 1, R).expand(1, 1, R, R).float()
    t, _ = view(1, 4 * R, P, CPU, cu=0.2, cv=0.1)
    up = upsample_lanczos(canvas, t, P)
    u = t[0, 0, 2] + ((torch.arange(P, dtype=torch.float64) + 0.5) / P - 0.5) * t[0, 0, 0]
    assert torch.allclose(up[0, 0], torch.cos(2 * math.pi * 3 * u).float().view(1, P).expand(P, P), atol=0.01)
    # Noise at R, brought to 4R: its power above R's Nyquist (1/8 cycle per pixel) is imaging only.
    noise = torch.rand(8, 3, R, R, generator=torch.Generator().manual_seed(0)) * 2 - 1
    bands = band_power(grey(((upsample_lanczos(noise, t.expand(8, 3, 3), P) + 1) * 127.5).numpy()), octave_edges(P))
    assert bands[:, 3].mean() < 0.02 * bands[:, :2].mean(0).sum()
