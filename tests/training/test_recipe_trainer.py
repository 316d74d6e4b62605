"""The paper's training recipe in trainer.py, step by step: the teacher term on global steps, the
masked spatial LPIPS, the EMA ramp-up, each phase freezing the other network, lazy R1 as its own
optimiser step, --batch-gpu accumulation, the CUDA math switches, --compile, and the flags'
bounds. Tiny preset, batch 4, a few phases each."""

from __future__ import annotations

import copy
import dataclasses
import math
import shutil

import numpy as np
import pytest
import torch

from plumbing.errors import ConfigError
from tests.cli_outcome import check_flag_outcome, one_error_line, run_main
from training.commands.train import main
from training.errors import TrainingError
from training.geometry import patch_transform
from training.networks.losses import masked_l1, r1_penalty, teacher_loss, to_teacher_frame
from training.networks.lpips import LocalLPIPS
from training.networks.render import identity_view
from training.run import trainer as trainer_module
from training.run.config import PRESETS
from training.run.trainer import Trainer

from .weight_helpers import lpips_state, save, writing_program

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
BASE = PRESETS["tiny"]
R = BASE.resolution


def config(batch: int = 4, **overrides):
    return dataclasses.replace(BASE, loader=dataclasses.replace(BASE.loader, batch_size=batch), **overrides)


def patch_views(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    scale = rng.uniform(R, 3 * R, n)
    centre = (rng.random((n, 2)) - 0.5) * (1 - R / scale[:, None])
    t = np.stack([patch_transform(float(s), float(c[0]), float(c[1]), R) for s, c in zip(scale, centre)])
    return torch.from_numpy(t), torch.from_numpy(scale)


def teacher_for(trainer: Trainer) -> torch.nn.Module:
    """A teacher that differs from the student, so that the teacher term is not zero."""
    teacher = copy.deepcopy(trainer.G)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return teacher


def capture_steps(opt: torch.optim.Optimizer, params, log: list) -> None:
    """Record the gradients each optimiser step would apply, and apply none: the weights stay put,
    so that two trainers can be compared phase by phase."""
    params = list(params)
    opt.step = lambda *a, **k: log.append([p.grad.clone() if p.grad is not None else None for p in params])


# -- 1. the teacher term on global steps -------------------------------------------------------

def test_a_global_step_compares_the_whole_frame_with_the_teacher():
    torch.manual_seed(1)
    trainer = Trainer(config(stage="patch"), CPU)
    trainer.set_teacher(teacher_for(trainer))
    z = torch.randn(4, BASE.g.z_dim)
    eye, r = identity_view(4, R, CPU)
    with torch.no_grad():  # on a copy: the forward updates G's running statistics, as the phase's will
        student = copy.deepcopy(trainer.G)(z, eye, r, R, update_avg=True)
        expected = (student - trainer.teacher(z, eye, r, R)).abs().mean().item()
    stats = trainer.g_phase(eye, r, z, R, with_teacher=True)
    assert stats["teacher"] == pytest.approx(expected, rel=1e-5) and expected > 0
    # The shortcut is the resampling it skips: at S = p = R the window is the frame, pixel for pixel.
    a, b = torch.rand(2, 3, R, R), torch.rand(2, 3, R, R)
    eye2, r2 = identity_view(2, R, CPU)
    seen, mask = to_teacher_frame(a, eye2, r2, R)
    assert bool(mask.all()) and torch.allclose(seen, a, atol=1e-5)
    assert teacher_loss(a, b, eye2, r2).item() == pytest.approx(masked_l1(seen, b, mask).item(), abs=1e-5)


# -- 2. LPIPS as a spatial map, averaged over the window ---------------------------------------

def lpips_file(path) -> str:
    """LPIPS on AlexNet, saved from the project's own network (random trunk, non-negative heads)."""
    return str(save(lpips_state("alex"), path))


def test_lpips_map_is_averaged_over_the_window_only(tmp_path):
    lpips = LocalLPIPS(lpips_file(tmp_path / "lpips.pth"))
    torch.manual_seed(0)
    a, b = torch.rand(2, 3, R, R) * 2 - 1, torch.rand(2, 3, R, R) * 2 - 1
    mask = torch.zeros(2, 1, R, R)
    mask[0, :, 4:20, 8:24] = 1
    mask[1, :, 10:30, 2:12] = 1
    got = lpips(a, b, mask)
    d = lpips.distance_map(a * mask, b * mask)  # the inputs are masked, then the map
    assert d.shape == (2, 1, R, R)
    expected = torch.stack([d[i][mask[i].bool()].mean() for i in range(2)]).mean()
    assert got.item() > 0 and got.item() == pytest.approx(expected.item(), rel=1e-5)
    outside = b.clone()
    outside[mask.expand_as(b) == 0] = -1  # whatever lies outside the window does not count
    assert lpips(a, outside, mask).item() == pytest.approx(got.item(), rel=1e-6)
    assert lpips(a, a, mask).item() == 0


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_a_program_as_lpips_file_is_refused_as_the_run_starts(tmp_path):
    path, target = writing_program(tmp_path)
    with pytest.raises(TrainingError, match=r"is a TorchScript or torch.export program, which anyres never runs") as err:
        Trainer(config(stage="patch", lpips=str(path)), CPU)
    assert "\n" not in str(err.value) and not target.exists()
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a state dict")
    with pytest.raises(TrainingError, match="is not a state dict saved by torch.save"):
        LocalLPIPS(broken)


def test_the_teacher_term_adds_the_masked_lpips(tmp_path):
    trainer = Trainer(config(stage="patch", lpips=lpips_file(tmp_path / "l.pth"), lpips_weight=2.0), CPU)
    trainer.set_teacher(teacher_for(trainer))
    t, s = patch_views(4)
    z = torch.randn(4, BASE.g.z_dim)
    with torch.no_grad():
        fake = copy.deepcopy(trainer.G)(z, t, s, R, update_avg=True)
        eye, r = identity_view(4, R, CPU)
        target = trainer.teacher(z, eye, r, R)
        l1 = teacher_loss(fake, target, t, s).item()
        seen, mask = to_teacher_frame(fake, t, s, R)
        lp = trainer.lpips(seen, target, mask).item()
    stats = trainer.g_phase(t, s, z, R, with_teacher=True)
    assert lp > 0 and stats["teacher"] == pytest.approx(l1 + 2.0 * lp, rel=1e-4)


# -- 3. EMA ramp-up ----------------------------------------------------------------------------

def ema_beta(trainer: Trainer, step: int, batch: int = 4) -> float:
    """The beta update_ema used, read back from one parameter."""
    g, ema = next(trainer.G.parameters()), next(trainer.G_ema.parameters())
    with torch.no_grad():
        ema.copy_(g + 1.0)
        trainer.step_index = step
        trainer.update_ema(batch)
        return float((ema - g).mean())  # ema = g + beta * 1


@pytest.mark.parametrize("stage, rampup, step, half_life", [
    ("global", 0.05, 0, 0.0),  # nothing shown yet: G_ema starts as G
    ("global", 0.05, 100, 100 * 4 * 0.05),
    ("global", 0.05, 10**6, 500.0),  # ramped up: the preset's ema_kimg = 0.5
    ("global", None, 0, 500.0),
    ("patch", 0.05, 0, 500.0),  # stage 2 continues stage 1's EMA
])
def test_ema_half_life_ramps_up_in_stage_global_only(stage, rampup, step, half_life):
    trainer = Trainer(config(stage=stage, ema_rampup=rampup), CPU)
    expected = 0.5 ** (4 / half_life) if half_life else 0.0
    assert ema_beta(trainer, step) == pytest.approx(expected, abs=1e-6)


# -- 4. and 5. frozen networks; lazy R1 as its own step ----------------------------------------

def test_each_phase_freezes_the_other_network_and_frees_its_gradients():
    trainer = Trainer(config(), CPU)
    seen = {}

    def spy(name, opt, mine, other):
        step = opt.step

        def wrapped(*a, **k):
            seen[name] = (all(p.grad is not None for p in mine), all(p.grad is None for p in other),
                          any(p.requires_grad for p in other))
            return step(*a, **k)
        opt.step = wrapped

    spy("G", trainer.opt_g, list(trainer.G.parameters()), list(trainer.D.parameters()))
    spy("D", trainer.opt_d, list(trainer.D.parameters()), list(trainer.G.parameters()))
    eye, r = identity_view(4, R, CPU)
    trainer.step(torch.rand(4, 3, R, R) * 2 - 1, eye, r, torch.randn(4, BASE.g.z_dim), torch.randn(4, BASE.g.z_dim),
                 False, 4)
    # While one network steps, the other has no gradient and requires none.
    assert seen == {"G": (True, True, False), "D": (True, True, False)}
    nets = list(trainer.G.parameters()) + list(trainer.D.parameters())
    assert all(p.requires_grad and p.grad is None for p in nets)  # restored; spent gradients freed


def test_lazy_r1_is_its_own_optimiser_step_with_the_interval_correction():
    cfg = config(r1_interval=2, gamma=0.5)
    trainer = Trainer(cfg, CPU)
    ratio = 2 / 3
    (group,) = trainer.opt_d.param_groups
    assert group["lr"] == pytest.approx(cfg.lr_d * ratio) and group["betas"][1] == pytest.approx(0.99 ** ratio)
    real = torch.rand(4, 3, R, R) * 2 - 1
    eye, r = identity_view(4, R, CPU)
    expected, grads = [], []
    step = trainer.opt_d.step

    def check(*a, **k):  # the R1 step's gradient is gamma/2 * interval * grad R1, nothing else
        d = copy.deepcopy(trainer.D)
        x = real.clone().requires_grad_(True)
        r1 = r1_penalty(d(x, r), x) * (cfg.gamma / 2 * cfg.r1_interval)
        params = list(d.parameters())  # the output bias, say, has no part in R1: a zero gradient
        grad = torch.autograd.grad(r1, params, allow_unused=True)
        expected.append([torch.zeros_like(p) if g is None else g for p, g in zip(params, grad)])
        grads.append([p.grad.clone() for p in trainer.D.parameters()])
        return step(*a, **k)

    trainer.opt_d.step = check
    counts = []
    for _ in range(3):
        before = len(grads)
        stats = trainer.step(real, eye, r, torch.randn(4, BASE.g.z_dim), torch.randn(4, BASE.g.z_dim), False, 4)
        counts.append((len(grads) - before, "R1" in stats))
    assert counts == [(2, True), (1, False), (2, True)]  # steps 0 and 2: main step, then R1 step
    for i in (1, 4):  # the R1 steps
        for got, want in zip(grads[i], expected[i]):
            assert torch.allclose(got, want, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(grads[0][0], expected[0][0])  # the main step's is the logistic loss


def test_a_trainer_restored_mid_run_continues_exactly():
    """The optimiser state, the step index (R1's phase, the EMA ramp-up, the augmentation's
    draws) and ADA's p resume exactly."""
    cfg = config(r1_interval=2)
    eye, r = identity_view(4, R, CPU)
    g = torch.Generator().manual_seed(3)
    batches = [(torch.rand(4, 3, R, R, generator=g) * 2 - 1, torch.randn(4, BASE.g.z_dim, generator=g),
                torch.randn(4, BASE.g.z_dim, generator=g)) for _ in range(3)]
    a = Trainer(cfg, CPU)
    a.augment.p = 0.5  # every transform in play
    a.step(batches[0][0], eye, r, *batches[0][1:], False, 4)
    b = Trainer(cfg, CPU)
    torch.manual_seed(99)  # a fresh process's global generator: it plays no part
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    for real, zd, zg in batches[1:]:
        for t in (a, b):
            t.step(real, eye, r, zd, zg, False, 4)
    for net in ("G", "G_ema", "D"):
        for k, v in a.state_dict()[net].items():
            assert torch.equal(v, b.state_dict()[net][k]), (net, k)


# -- 6. --batch-gpu ----------------------------------------------------------------------------

def one_step_gradients(cfg, real, t, s, zd, zg) -> tuple[list, dict]:
    """The gradients of D main, R1 and G main of one step (captured, not applied), and its stats.
    G's running statistics (w_avg, magnitude EMAs) move with every training forward, so per
    micro-batch, as in StyleGAN3: they are held still here, to compare the accumulation only."""
    trainer = Trainer(cfg, CPU)
    torch.manual_seed(7)
    trainer.set_teacher(teacher_for(trainer))
    trainer.g_forward = lambda *a, update_avg=False, G=trainer.G: G(*a)
    log_g, log_d = [], []
    capture_steps(trainer.opt_g, trainer.G.parameters(), log_g)
    capture_steps(trainer.opt_d, trainer.D.parameters(), log_d)
    stats = trainer.step(real, t, s, zd, zg, True, real.shape[0])
    return log_d + log_g, stats


def relative_error(a: list, b: list) -> float:
    """Largest difference over the phase's largest gradient."""
    return max((x - y).abs().max().item() for x, y in zip(a, b)) / max(x.abs().max().item() for x in a)


def test_batch_gpu_accumulates_the_full_batch_gradient():
    """Half-batch micro-batches: every phase's gradient is the share-weighted sum of the halves'
    (fp32 exact), and the unsplit batch's. D's minibatch-std groups (2) divide the micro-batch
    (2), so D computes the same function and its phases match the unsplit step to 1e-5. G's
    match to 1e-5 in the sum of the halves, but only to ~1e-3 against the unsplit batch: fp32
    kernels round differently at batch 4 and 2 (1e-7), and a leaky-ReLU input that close to 0
    changes side, moving the gradients of G's earlier layers (permuting the batch instead, with
    the same kernels, moves them by 1e-7)."""
    cfg = config(stage="patch", r1_interval=1, gamma=1.0, d=dataclasses.replace(BASE.d, mbstd_group=2))
    g = torch.Generator().manual_seed(11)
    real = torch.rand(4, 3, R, R, generator=g) * 2 - 1
    zd, zg = torch.randn(4, BASE.g.z_dim, generator=g), torch.randn(4, BASE.g.z_dim, generator=g)
    t, s = patch_views(4)
    whole, whole_stats = one_step_gradients(cfg, real, t, s, zd, zg)
    split, split_stats = one_step_gradients(dataclasses.replace(cfg, batch_gpu=2), real, t, s, zd, zg)
    halves = [one_step_gradients(config(2, stage="patch", r1_interval=1, gamma=1.0, d=cfg.d), real[h], t[h], s[h],
                                 zd[h], zg[h]) for h in (slice(0, 2), slice(2, 4))]
    assert len(whole) == len(split) == 3  # D main, R1, G main
    for phase in range(3):
        summed = [0.5 * (a + b) for a, b in zip(halves[0][0][phase], halves[1][0][phase])]
        assert relative_error(summed, split[phase]) <= 1e-5, phase
        assert relative_error(whole[phase], split[phase]) <= (1e-5 if phase < 2 else 3e-3), phase
    assert set(whole_stats) == set(split_stats) >= {"loss_D", "R1", "loss_G", "teacher"}
    for k in whole_stats:
        assert split_stats[k] == pytest.approx(whole_stats[k], rel=1e-5, abs=1e-7), k


def test_micro_batches_are_consecutive_chunks():
    assert trainer_module.micro_batches(8, None) == [slice(0, 8)]
    assert trainer_module.micro_batches(8, 4) == [slice(0, 4), slice(4, 8)]


# -- 7. and 8. CUDA math, torch.compile --------------------------------------------------------

def cuda_math() -> tuple[bool, bool, bool]:
    return (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)


def set_cuda_math(tf32_matmul: bool, tf32_conv: bool, benchmark: bool) -> None:
    # Plain assignment: the cuBLAS switch is a module property that monkeypatch cannot read back.
    torch.backends.cuda.matmul.allow_tf32 = tf32_matmul
    torch.backends.cudnn.allow_tf32 = tf32_conv
    torch.backends.cudnn.benchmark = benchmark


def test_fast_cuda_math_is_set_in_one_place():
    before = cuda_math()
    try:
        set_cuda_math(False, False, False)
        Trainer(config(), CPU)  # a CPU run leaves them alone
        assert cuda_math() == (False, False, False)
        trainer_module.enable_fast_cuda_math()  # what a CUDA trainer calls as it starts
        assert cuda_math() == (True, True, True)
    finally:
        set_cuda_math(*before)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                    reason="torch.compile's CPU backend (inductor) builds C++ kernels and needs a C compiler")
def test_compiled_generator_forward_matches_eager():
    trainer = Trainer(config(compile=True), CPU)
    assert trainer.g_forward is not trainer.G and trainer.d_forward is not trainer.D
    z = torch.randn(2, BASE.g.z_dim)
    t, s = patch_views(2)
    with torch.no_grad():
        eager = trainer.G(z, t, s, R)
        compiled = trainer.g_forward(z, t, s, R)
    assert (compiled - eager).abs().max().item() <= 1e-4
    default = Trainer(config(), CPU)
    assert default.g_forward is default.G and default.d_forward is default.D  # default: no compile


# -- flags -------------------------------------------------------------------------------------

BAD = ["0", "-1", "nan", "inf", "-inf", "1e308", str(10**30), ""]
FLAGS = {"--batch-gpu": lambda v: False, "--ema-rampup": lambda v: v == "0"}


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_recipe_flags_never_give_a_traceback(capsys, tmp_path, flag, value):
    missing = str(tmp_path / "no-such-dataset")
    code = run_main(main, ["train", "--data", missing, "--out", str(tmp_path / "run"), flag, value])
    err = capsys.readouterr().err
    check_flag_outcome(code, err, flag, FLAGS[flag](value))
    line = one_error_line(code, err)
    assert ("cannot read dataset" in line) == FLAGS[flag](value), line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [
    (["--batch-gpu", "3"], "--batch-gpu 3 does not divide"),  # the tiny preset's batch is 16
    (["--batch-gpu", "32"], "batch_gpu must be between 1 and the batch 16"),
])
def test_a_batch_gpu_that_does_not_split_the_batch_is_one_line(capsys, tmp_path, argv, message):
    code = run_main(main, ["train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run"), *argv])
    assert message in one_error_line(code, capsys.readouterr().err)


@pytest.mark.parametrize("setting, value", [("ema_rampup", math.nan), ("ema_rampup", math.inf),
                                            ("ema_rampup", 0.0), ("ema_rampup", -1.0), ("batch_gpu", 0),
                                            ("batch_gpu", -1)])
def test_the_config_tree_rejects_recipe_values_that_mean_nothing(setting, value):
    with pytest.raises(ConfigError, match=setting):
        dataclasses.replace(BASE, **{setting: value})
