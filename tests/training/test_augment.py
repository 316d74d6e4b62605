"""Discriminator augmentation (networks/augment.py): ADA's adaptive p, its geometric and colour
pipeline, DiffAugment, the trainer's hook, the checkpoint state and the flags."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from plumbing.errors import ConfigError
from tests.cli_outcome import one_error_line, run_main
from training import checkpoint
from training.commands.train import build_parser, main
from training.commands.train_flags import config_from_args
from training.networks.augment import Augment, AugmentConfig, apply_geometry
from training.networks.discriminator import Discriminator
from training.run.config import PRESETS
from training.run.trainer import Trainer

from .gan_helpers import TINY, TINY_D

FAST = AugmentConfig(kind="ada", target=0.6, ada_kimg=1.0, interval=4)  # p moves 64/1000 per 4 steps of 16


def images(b: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def feed(aug: Augment, logits: torch.Tensor, steps: int, **kw) -> None:
    for _ in range(steps):
        aug.observe(logits, **kw)


# --- ADA's p ---------------------------------------------------------------------------------

def test_p_rises_when_d_is_overconfident_and_only_every_interval_steps():
    aug = Augment(FAST)
    feed(aug, torch.full((16,), 3.0), 3)
    assert aug.p == 0.0  # not yet: p moves once per interval
    feed(aug, torch.full((16,), 3.0), 1)
    assert aug.p == pytest.approx(64 / 1000)  # 4 steps x 16 reals, at 1 kimg for the whole range
    feed(aug, torch.full((16,), 0.5), 4 * 20)  # sign, not size, is what counts
    assert aug.p == 1.0  # and it stops at 1


def test_p_falls_when_d_is_not_overconfident_and_stops_at_zero():
    aug = Augment(FAST)
    aug.p = 0.5
    undecided = torch.tensor([1.0, -1.0] * 8)  # r_t = 0 < 0.6
    feed(aug, undecided, 4)
    assert aug.p == pytest.approx(0.5 - 64 / 1000)
    feed(aug, undecided, 4 * 20)
    assert aug.p == 0.0


def test_p_follows_the_statistics_of_all_ranks():
    # This rank's D is overconfident; the all-reduce says that across the ranks it is not. Every
    # rank applies the averaged statistics, and the step counts the images of both ranks.
    aug = Augment(FAST)
    aug.p = 0.5
    this_rank = torch.full((16,), 2.0)

    def mean(t: torch.Tensor) -> torch.Tensor:  # what dist.mean_ returns when the other rank saw r_t = -1
        other = torch.tensor([-t[1].item(), t[1].item()], dtype=t.dtype)
        return t.add_(other).div_(2)

    feed(aug, this_rank, 4, mean=mean, world=2)
    assert aug.p == pytest.approx(0.5 - 2 * 64 / 1000)


def test_diffaugment_and_none_leave_p_alone():
    for kind in ("diffaug", "none"):
        aug = Augment(dataclasses.replace(FAST, kind=kind))
        feed(aug, torch.full((16,), 3.0), 8)
        assert aug.p == 0.0 and aug.stats() == {}
    assert Augment(FAST).stats() == {"aug_p": 0.0}


# --- the pipelines ---------------------------------------------------------------------------

def test_p_zero_and_none_are_exactly_the_identity():
    x = images()
    assert Augment(FAST)(x) is x
    assert Augment(dataclasses.replace(FAST, kind="none"))(x) is x
    tiny = Augment(FAST)
    tiny.p = 1e-12  # on, but no sample draws any transform: untouched, not resampled
    assert torch.equal(tiny(x), x)


def test_whole_pixel_transforms_move_pixels_without_blurring_them():
    x = images(2)
    flip = torch.diag(torch.tensor([-1.0, 1.0, 1.0])).expand(2, 3, 3)
    torch.testing.assert_close(apply_geometry(x, flip), x.flip(-1), atol=1e-5, rtol=0)
    quarter = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).expand(2, 3, 3)
    torch.testing.assert_close(apply_geometry(x, quarter), torch.rot90(x, 1, (2, 3)), atol=1e-5, rtol=0)
    one_pixel = torch.tensor([[1.0, 0.0, 2 / 16], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).expand(2, 3, 3)
    torch.testing.assert_close(apply_geometry(x, one_pixel)[..., :-1], x[..., 1:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["ada", "diffaug"])
def test_augmentation_keeps_shapes_and_is_differentiable_to_second_order(kind):
    aug = Augment(dataclasses.replace(FAST, kind=kind))
    aug.p = 1.0
    torch.manual_seed(0)
    x = images().requires_grad_(True)
    y = aug(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert not torch.allclose(y, x)
    # R1 differentiates D(augment(real)) w.r.t. the real, then that gradient w.r.t. D's weights.
    weight = torch.randn(4, 3, 3, 3, requires_grad=True)
    score = torch.nn.functional.conv2d(y, weight).square().sum()
    (grad,) = torch.autograd.grad(score, x, create_graph=True)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    grad.square().sum().backward()
    assert torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["ada", "diffaug"])
def test_every_sample_draws_its_own_augmentation(kind):
    aug = Augment(dataclasses.replace(FAST, kind=kind))
    aug.p = 1.0
    torch.manual_seed(1)
    x = images(1).expand(16, 3, 16, 16)  # one image, sixteen times
    y = aug(x).flatten(1)
    distinct = torch.cdist(y, y) + torch.eye(16) > 1e-3
    assert distinct.all(), "two samples of the batch got the same augmentation"


def test_ranks_draw_their_own_augmentations_reproducibly_per_step():
    # Every rank has the same seed (same initial weights); the draws must still differ by rank,
    # or sample i of every rank's share would get the same augmentation. A draw is a function of
    # (seed, rank, step) alone: what a resumed run needs.
    x = images(4)
    outs = []
    for rank in (0, 1):
        aug = Augment(FAST, seed=4, rank=rank)
        aug.p = 1.0
        aug.reseed(7)
        outs.append(aug(x))
    assert not torch.allclose(outs[0], outs[1])
    again = Augment(FAST, seed=4, rank=1)
    again.p = 1.0
    torch.manual_seed(123)  # torch's global generator plays no part
    again.reseed(7)
    assert torch.equal(again(x), outs[1])
    again.reseed(8)
    assert not torch.allclose(again(x), outs[1])


def test_ada_at_half_probability_leaves_some_samples_untouched():
    aug = Augment(FAST)
    aug.p = 0.3  # each of 10 transforms off with 0.7: about 3% of samples see none
    torch.manual_seed(2)
    x = images(256)
    same = (aug(x) == x).flatten(1).all(1)
    assert 0 < int(same.sum()) < 40


@pytest.mark.parametrize("kind", ["ada", "diffaug"])
def test_under_cpu_bf16_autocast_the_geometry_stays_in_float32(kind, one_thread):  # noqa: F811
    aug = Augment(dataclasses.replace(FAST, kind=kind))
    aug.p = 1.0
    x = images()
    aug.reseed(3)
    exact = aug(x)
    D = Discriminator(TINY_D)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        aug.reseed(3)
        mixed = aug(x)
        logits = D(aug(x.bfloat16()), torch.full((8,), 16.0))
    assert torch.equal(mixed, exact)  # the same draws give the same float32 images
    assert torch.isfinite(logits.float()).all()


# --- the trainer -----------------------------------------------------------------------------

def test_every_image_d_scores_has_gone_through_the_augmentation(one_thread):  # noqa: F811
    trainer = Trainer(dataclasses.replace(TINY, aug=FAST), torch.device("cpu"))
    augmented, scored = set(), []
    inner, forward = trainer.augment, trainer.D.forward

    class Spy:
        def __call__(self, x):
            y = inner(x)
            augmented.add(id(y))
            return y

        def __getattr__(self, name):
            return getattr(inner, name)

    trainer.augment = Spy()
    trainer.D.forward = lambda img, scale: scored.append(id(img)) or forward(img, scale)
    trainer.augment.p = 0.0
    transform, scale = torch.eye(3).expand(8, 3, 3), torch.full((8,), 16.0)
    stats = trainer.step(images(), transform, scale, torch.randn(8, 16), torch.randn(8, 16), False, 8)
    assert len(scored) >= 3 and set(scored) <= augmented  # reals and fakes in D's phase, fakes in G's
    assert stats["aug_p"] == 0.0


def test_ada_state_survives_a_checkpoint_round_trip(tmp_path, one_thread):  # noqa: F811
    cfg = dataclasses.replace(TINY, aug=FAST)
    trainer = Trainer(cfg, torch.device("cpu"))
    trainer.augment.p = 0.25
    feed(trainer.augment, torch.full((8,), 1.0), 2)  # half-way through an interval
    path = tmp_path / "checkpoint.pt"
    checkpoint.save(path, {"trainer": trainer.state_dict(), "config": cfg.to_dict(), "step": 0})
    resumed = Trainer(cfg, torch.device("cpu"))
    resumed.load_state_dict(checkpoint.read(path)["trainer"])
    assert resumed.augment.p == 0.25
    for t in (trainer, resumed):
        feed(t.augment, torch.full((8,), 1.0), 2)
    assert resumed.augment.p == trainer.augment.p > 0.25  # the interval completes at the same step


def test_checkpoints_from_before_augmentation_resume_at_p_zero(one_thread):  # noqa: F811
    trainer = Trainer(dataclasses.replace(TINY, aug=FAST), torch.device("cpu"))
    state = trainer.state_dict()
    del state["augment"]
    trainer.augment.p = 0.5
    trainer.load_state_dict(state)
    assert trainer.augment.p == 0.5  # nothing to load: the state it had stays
    fresh = Trainer(dataclasses.replace(TINY, aug=FAST), torch.device("cpu"))
    fresh.load_state_dict(state)
    assert fresh.augment.p == 0.0


# --- config and flags ------------------------------------------------------------------------

def test_presets_default_to_ada_and_the_tiny_one_adapts_fast():
    assert PRESETS["sg3t-256"].aug == AugmentConfig("ada", 0.6, 500.0, 4)
    assert PRESETS["tiny"].aug.kind == "ada" and PRESETS["tiny"].aug.ada_kimg <= 5.0


@pytest.mark.parametrize("change", [{"kind": "bogus"}, {"target": math.nan}, {"target": 1.0}, {"target": -0.1},
                                    {"ada_kimg": 0.0}, {"ada_kimg": math.inf}, {"interval": 0}])
def test_the_config_rejects_what_no_setting_means(change):
    with pytest.raises(ConfigError):
        dataclasses.replace(AugmentConfig(), **change)


def test_the_flags_build_the_config(tmp_path):
    args = build_parser().parse_args(["train", "--data", "d", "--out", str(tmp_path), "--aug", "diffaug",
                                      "--ada-target", "0.7", "--ada-kimg", "50"])
    assert config_from_args(args).aug == AugmentConfig("diffaug", 0.7, 50.0, 4)
    args = build_parser().parse_args(["train", "--data", "d", "--out", str(tmp_path), "--preset", "sg3t-256"])
    assert config_from_args(args).aug == PRESETS["sg3t-256"].aug


@pytest.mark.parametrize("flag,value,accepted", [
    ("--aug", "bogus", False), ("--aug", "", False), ("--aug", "none", True),
    ("--ada-target", "nan", False), ("--ada-target", "inf", False), ("--ada-target", "-1", False),
    ("--ada-target", "1", False), ("--ada-target", "", False), ("--ada-target", "0", True),
    ("--ada-kimg", "0", False), ("--ada-kimg", "-1", False), ("--ada-kimg", "nan", False),
    ("--ada-kimg", "1e308", False), ("--ada-kimg", "", False), ("--ada-kimg", "100", True),
])
def test_bad_flag_values_are_one_line(capsys, tmp_path, flag, value, accepted):
    missing = str(tmp_path / "no-such-dataset")
    code = run_main(main, ["train", "--data", missing, "--out", str(tmp_path / "run"), flag, value])
    error = one_error_line(code, capsys.readouterr().err)
    if accepted:
        assert "cannot read dataset" in error, error
    else:
        assert "no-such-dataset" not in error and flag in error, error
    assert not (tmp_path / "run").exists()
