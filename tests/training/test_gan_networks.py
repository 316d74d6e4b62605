"""The networks against DESIGN.md 3: T means what the loader means by it, the scale conditioning
is alive when on and absent when off, the shared filters do what they say (the synthesis
network's tiles, patches and resampling: test_synthesis.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from training.geometry import Canvas, PatchDraw, patch_transform
from training.networks.discriminator import Discriminator
from training.networks.filters import lanczos_rows
from training.networks.generator import Generator
from training.networks.layers import ScaleEmbedding, normalize_2nd_moment

from .gan_helpers import TINY_D, TINY_G


def randomized(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter random, including the zero-initialised scale layers: nothing hides behind zeros."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if p.ndim == 1 else 0.0))
    return module.eval()


def test_patch_transform_is_the_loaders_transform():
    draw = PatchDraw(Canvas(3, 0, 200), scale=57.5, cu=0.12, cv=-0.2, size=16)
    assert np.allclose(patch_transform(57.5, 0.12, -0.2, 16), draw.transform())


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
        for layer in on.layers:
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


def test_lanczos_rows_are_each_samples_own_filter():
    centres = torch.tensor([[0.5, 3.5, 7.5, 11.5], [1.0, 4.2, 6.0, 11.9], [0.3, 5.5, 8.8, 10.0]])
    widths = torch.tensor([1.0, 2.5, 4.0])
    batched = lanczos_rows(centres, widths, 12)
    for i in range(3):  # the loop the batched version avoids
        assert torch.allclose(batched[i:i + 1], lanczos_rows(centres[i:i + 1], widths[i:i + 1], 12), atol=1e-6)
    # Width 1 at pixel centres: the sinc's zeros fall on every other pixel, so it picks pixels as they are.
    assert torch.allclose(batched[0], torch.eye(12)[[0, 3, 7, 11]], atol=1e-6)
    assert torch.allclose(batched.sum(-1), torch.ones(3, 4), atol=1e-6)  # flat stays flat, ends included


def test_lpips_term_comes_only_from_a_local_file(tmp_path):
    """--lpips fills the project's LPIPS from a state dict on disk (never a download) and adds its
    masked distance to the teacher L1; only the window is compared."""
    from training.errors import TrainingError
    from training.networks.losses import teacher_loss
    from training.networks.lpips import LocalLPIPS

    from .weight_helpers import lpips_state

    path = tmp_path / "lpips-alex.pth"
    torch.save(lpips_state("alex"), path)
    lpips = LocalLPIPS(path)
    torch.manual_seed(0)
    patch, teacher = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    t = torch.from_numpy(np.stack([patch_transform(64.0, 0.1, -0.1, 32), patch_transform(32.0, 0.0, 0.0, 32)]))
    s = torch.tensor([64.0, 32.0])
    l1 = teacher_loss(patch, teacher, t, s)
    both = teacher_loss(patch, teacher, t, s, lpips, lpips_weight=2.0)
    assert both > l1 and not any(p.requires_grad for p in lpips.parameters())
    with pytest.raises(TrainingError, match="does not exist"):  # there is nothing to fetch
        LocalLPIPS(tmp_path / "absent.pth")
