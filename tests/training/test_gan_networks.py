"""The networks against DESIGN.md 3: tiles join without seams, T means what the loader means by
it, the scale conditioning is alive when on and absent when off, the filters do what they say."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from training.geometry import Canvas, PatchDraw, patch_transform
from training.networks.discriminator import Discriminator
from training.networks.filters import (
    FilteredLeakyReLU,
    downsample2,
    kaiser_lowpass,
    per_sample_blur,
    upsample2,
)
from training.networks.generator import Generator
from training.networks.layers import ScaleEmbedding, normalize_2nd_moment
from training.networks.render import render_full

from .gan_helpers import TINY_D, TINY_G

# Float32 rounding only: every layer is a valid convolution on grids tied to the pixel centres,
# so a tile is the same arithmetic as the matching crop of a bigger render, in another order.
TILE_TOLERANCE = 1e-5


def randomized(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter random, including the zero-initialised scale layers: nothing hides behind zeros."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if p.ndim == 1 else 0.0))
    return module.eval()


@pytest.fixture(scope="module")
def generator() -> Generator:
    torch.manual_seed(0)
    return randomized(Generator(TINY_G))


def test_tiles_assemble_into_the_one_pass_render(generator):
    ws = generator.mapping(torch.randn(2, TINY_G.z_dim))
    with torch.no_grad():
        whole = render_full(generator, ws, 64)
        tiled = render_full(generator, ws, 64, tile=16)
    assert whole.shape == tiled.shape == (2, 3, 64, 64)
    assert whole.std() > 0.05  # a real image, not a constant that would tile trivially
    assert (whole - tiled).abs().max() < TILE_TOLERANCE


def test_a_patch_at_any_window_is_the_same_area_of_a_larger_image(generator):
    ws = generator.mapping(torch.randn(1, TINY_G.z_dim))
    s, p = 96, 16
    with torch.no_grad():
        big = render_full(generator, ws, s, tile=p)  # assembled from 6 x 6 tiles
        for x0, y0 in ((0, 0), (37, 5), (80, 61)):  # any whole-pixel offset, edges included
            cu, cv = (x0 + p / 2) / s - 0.5, (y0 + p / 2) / s - 0.5
            t = torch.from_numpy(patch_transform(s, cu, cv, p))[None]
            patch = generator.synthesis(ws, t, torch.tensor([float(s)]), p)
            assert (patch - big[:, :, y0:y0 + p, x0:x0 + p]).abs().max() < TILE_TOLERANCE


def test_patch_transform_is_the_loaders_transform():
    draw = PatchDraw(Canvas(3, 0, 200), scale=57.5, cu=0.12, cv=-0.2, size=16)
    assert np.allclose(patch_transform(57.5, 0.12, -0.2, 16), draw.transform())


def test_detail_appears_when_zooming_in():
    """Features above a scale's Nyquist are faded out: a zoomed-in view has finer features on,
    which the global view at R cannot show."""
    g = Generator(TINY_G).eval()
    inp = g.input
    with torch.no_grad():
        at_r = inp(torch.eye(3)[None], torch.tensor([16.0]), 16, 0)
        radius = inp.freqs.norm(dim=1)  # cycles per canvas
        per_pixel_r, per_pixel_4r = radius / 16, radius / 64
    assert at_r.abs().max() > 0
    assert ((per_pixel_r >= 0.5) & (per_pixel_4r < 0.25)).sum() >= 4  # off at R, fully on at 4R


def test_scale_embedding_is_alive_when_on_and_absent_when_off():
    torch.manual_seed(1)
    on = Generator(TINY_G).eval()
    off = Generator(dataclasses.replace(TINY_G, scale_cond=False)).eval()
    off.load_state_dict(on.state_dict(), strict=False)  # the same weights, less the scale branch
    assert not any("scale" in k or k.startswith("embed") for k in off.state_dict())
    z = torch.randn(3, TINY_G.z_dim)
    s = torch.tensor([16.0, 32.0, 64.0])
    t = torch.from_numpy(np.stack([patch_transform(float(v), 0.0, 0.0, 16) for v in s]))
    with torch.no_grad():
        # Zero-initialised: a stage-1 network behaves exactly as without the branch.
        assert torch.equal(on(z, t, s), off(z, t, s))
        for layer in [*on.layers, on.to_rgb]:
            torch.nn.init.normal_(layer.scale_affine.weight, std=0.5)
        changed = on(z, t, s) - off(z, t, s)
        # Same latent and window, scale label moved: only the embedding sees the difference.
        relabelled = on.synthesis(on.mapping(z), t, s * 1.5) - on.synthesis(on.mapping(z), t, s)
    assert changed.abs().amax(dim=(1, 2, 3)).min() > 1e-2  # every sample, every scale
    assert relabelled.abs().max() > 1e-2


def test_scale_embedding_separates_scales_the_old_normalisation_merged():
    emb = randomized(ScaleEmbedding(16, 8))
    s = torch.tensor([16.0, 17.0, 32.0, 128.0])
    with torch.no_grad():
        e = emb(s)
    assert torch.cdist(e, e).fill_diagonal_(1.0).min() > 1e-3
    # The bug being fixed: normalising a one-element input makes every positive scale equal.
    assert torch.allclose(normalize_2nd_moment(torch.log(s / 8).unsqueeze(1)), torch.ones(4, 1))


def test_discriminator_projection_depends_on_scale_only_when_on():
    x = torch.randn(4, 3, 16, 16)
    s1, s2 = torch.full((4,), 16.0), torch.full((4,), 48.0)
    on = randomized(Discriminator(TINY_D))
    off = randomized(Discriminator(dataclasses.replace(TINY_D, scale_cond=False)))
    with torch.no_grad():
        assert (on(x, s1) - on(x, s2)).abs().max() > 1e-3
        assert torch.equal(off(x, s1), off(x, s2))


def test_filtered_nonlinearity_matches_its_convolution_form_and_shifts_by_whole_pixels():
    f = FilteredLeakyReLU(3)
    x = torch.randn(2, 4, 24, 24)
    reference = downsample2(torch.nn.functional.leaky_relu(upsample2(x, f.taps), 0.2) * 2 ** 0.5, f.taps)
    y = f(x)
    assert y.shape[-1] == 24 - 2 * f.shrink
    assert torch.allclose(y, reference, atol=1e-5)
    assert torch.allclose(f(x[:, :, 3:, 5:]), y[:, :, 3:, 5:], atol=1e-5)


def test_dense_and_convolution_paths_of_the_nonlinearity_agree(monkeypatch):
    import training.networks.filters as filters

    f = FilteredLeakyReLU(3)
    x = torch.randn(1, 3, 40, 30)
    dense = f(x)
    monkeypatch.setattr(filters, "DENSE_LIMIT", 8)  # force the depthwise-convolution path
    assert torch.allclose(f(x), dense, atol=1e-5)


def test_lowpass_passes_the_band_and_stops_the_alias_band():
    h = kaiser_lowpass(3, 0.25)
    n = np.arange(-3, 4)
    gain = lambda f: abs(np.sum(h * np.exp(-2j * np.pi * f * n)))  # noqa: E731
    assert abs(gain(0.0) - 1) < 1e-9 and gain(0.1) > 0.9
    assert gain(0.45) < 0.02 and gain(0.5) < 0.01


def test_per_sample_blur_is_each_samples_own_box_filter():
    x = torch.randn(3, 2, 12, 12)
    widths = torch.tensor([1.0, 2.5, 4.0])
    batched = per_sample_blur(x, widths)
    for i in range(3):  # the loop the batched version avoids
        assert torch.allclose(batched[i:i + 1], per_sample_blur(x[i:i + 1], widths[i:i + 1]), atol=1e-6)
    assert torch.equal(batched[0], x[0])  # width 1: one pixel, no blur
    assert torch.allclose(per_sample_blur(torch.ones(3, 2, 12, 12), widths), torch.ones(3, 2, 12, 12))


class _SquaredDistance(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).square().mean(dim=(1, 2, 3))


def test_lpips_term_comes_only_from_a_local_file(tmp_path):
    """--lpips loads a TorchScript network from disk (never a download) and adds its masked
    distance to the teacher L1; only the window is compared."""
    from training.networks.losses import LocalLPIPS, teacher_loss

    path = tmp_path / "lpips.pt2"
    batch = torch.export.Dim("batch", min=1, max=4096)
    example = (torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    torch.export.save(torch.export.export(_SquaredDistance(), example, dynamic_shapes=({0: batch}, {0: batch})), path)
    lpips = LocalLPIPS(path)
    torch.manual_seed(0)
    patch, teacher = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    t = torch.from_numpy(np.stack([patch_transform(32.0, 0.1, -0.1, 16), patch_transform(16.0, 0.0, 0.0, 16)]))
    s = torch.tensor([32.0, 16.0])
    l1 = teacher_loss(patch, teacher, t, s)
    both = teacher_loss(patch, teacher, t, s, lpips, lpips_weight=2.0)
    assert both > l1 and not any(p.requires_grad for p in lpips.parameters())
    with pytest.raises(Exception):  # noqa: B017 - any load failure: there is nothing to fetch
        LocalLPIPS(tmp_path / "absent.pt2")
