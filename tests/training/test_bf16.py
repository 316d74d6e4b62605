"""The CUDA path trains under bf16 autocast; CPU bf16 autocast runs the same code here, so the
dtype rules it needs are checked without a GPU (DESIGN.md 4)."""

from __future__ import annotations

import torch

from training.geometry import patch_transform
from training.networks.generator import Generator
from training.run.trainer import Trainer

from .gan_helpers import TINY, TINY_G


def cpu_bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def zoomed_views(n: int, size: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    # Patches deep in the zoom (S = 64 R) at off-grid centres: where bf16 coordinates fail.
    centres = torch.linspace(-0.4, 0.4, n)
    transform = torch.stack([torch.from_numpy(patch_transform(scale, float(c), float(-c), size)) for c in centres])
    return transform, torch.full((n,), scale)


def test_a_full_training_step_runs_under_bf16_autocast(one_thread):  # noqa: F811
    torch.manual_seed(0)
    trainer = Trainer(TINY, torch.device("cpu"))
    trainer.autocast = cpu_bf16  # the CUDA branch's autocast, on the CPU
    real = torch.rand(4, 3, 16, 16) * 2 - 1
    transform, scale = zoomed_views(4, 16, 64.0)
    before = trainer.G.mapping.w_avg.clone()
    trainer.set_teacher(Generator(TINY_G))  # stage 2: the teacher renders under autocast too
    for with_teacher in (False, True):
        stats = trainer.step(real, transform, scale, torch.randn(4, 16), torch.randn(4, 16),
                             with_teacher=with_teacher, global_batch=4)
        assert all(torch.isfinite(torch.tensor(v)) for v in stats.values()), stats
    assert "teacher" in stats
    assert trainer.G.mapping.w_avg.dtype == torch.float32 and not torch.equal(trainer.G.mapping.w_avg, before)


def test_truncation_runs_under_bf16_autocast():
    G = Generator(TINY_G).eval()
    with torch.no_grad(), cpu_bf16():
        w = G.mapping(torch.randn(2, 16), psi=0.7)
    assert torch.isfinite(w).all()


def test_fourier_features_are_computed_in_float32_under_autocast():
    # Canvas coordinates through T and the phases of the high octaves need fp32: bf16 keeps 8
    # bits of mantissa, so deep in a zoom the features would be noise, and training would see
    # other inputs than inference (which runs in fp32).
    G = Generator(TINY_G).eval()
    transform, scale = zoomed_views(3, 16, 16.0 * 64)
    with torch.no_grad():
        exact = G.input(transform, scale, 16, 40)
        with cpu_bf16():
            mixed = G.input(transform, scale, 16, 40)
    assert mixed.dtype == torch.float32
    assert (mixed - exact).abs().max() <= 1e-5


def test_a_global_360_step_and_its_cylinder_run_under_bf16_autocast(one_thread):  # noqa: F811
    import dataclasses

    from training.networks.render import view

    pano = dataclasses.replace(TINY, stage="global-360", g=dataclasses.replace(TINY_G, fov=60.0))
    torch.manual_seed(0)
    trainer = Trainer(pano, torch.device("cpu"))
    trainer.autocast = cpu_bf16
    transform, scale = view(4, 16, 16, "cpu", cu=2.9)  # frames across the turn's end
    stats = trainer.step(torch.rand(4, 3, 16, 16) * 2 - 1, transform.float(), scale, torch.randn(4, 16),
                         torch.randn(4, 16), with_teacher=False, global_batch=4)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values()), stats
    with torch.no_grad():
        exact = trainer.G.input(transform, scale, 16, 40)
        with cpu_bf16():
            mixed = trainer.G.input(transform, scale, 16, 40)
    assert mixed.dtype == torch.float32 and (mixed - exact).abs().max() <= 1e-5
