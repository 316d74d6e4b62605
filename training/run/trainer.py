"""One optimisation step of the any-resolution GAN, on whatever batch the loop hands it.

The networks, optimisers and EMA live here; data, ticks and files live in loop.py. A step is
StyleGAN2's phases: D main (logistic loss), D reg (lazy R1, its own optimiser step every
r1_interval steps) and G main (non-saturating loss, plus in stage 2 the teacher loss, on patch
and global batches alike). Each phase freezes the other network, accumulates over micro-batches
(--batch-gpu) and ends with one all-reduce that averages gradients over ranks, so every rank
applies the same update and the weights never drift apart.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import torch

from .. import dist
from ..networks.augment import Augment
from ..networks.cross_frame import splice_offsets, spliced_frames
from ..networks.discriminator import Discriminator
from ..networks.generator import Generator
from ..networks.losses import d_logistic, g_nonsaturating, r1_penalty, teacher_loss
from ..networks.lpips import LocalLPIPS
from ..networks.render import identity_view
from .config import TrainConfig


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Sum gradients over ranks in one flat all-reduce and divide by the world size."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = dist.mean_(torch.cat([g.flatten() for g in grads]), world)
    torch.nan_to_num_(flat, nan=0, posinf=1e5, neginf=-1e5)  # one bad sample must not poison Adam
    for p, g in zip(params, flat.split([q.numel() for q in params])):
        p.grad = g.view_as(p)


def micro_batches(n: int, size: int | None) -> list[slice]:
    """A rank's share in consecutive chunks of `size` (--batch-gpu). D's minibatch-std groups are
    consecutive samples too, so they lie within a micro-batch: a step equals the unsplit one when
    the group divides the chunk (a smaller chunk makes smaller groups, a different D)."""
    size = size or n
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _accumulate(sums: dict, share: float, **values: torch.Tensor) -> None:
    """Stats of a micro-batch, weighted by its share: detached, read once per phase."""
    for k, v in values.items():
        sums[k] = sums.get(k, 0) + v.detach().float() * share


@contextlib.contextmanager
def frozen(module: torch.nn.Module):
    """The other network is a fixed function in this phase: no backward into its weights (the
    time and memory StyleGAN2's phases save), and no stray .grad for its next phase to inherit."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def enable_fast_cuda_math() -> None:
    """TF32 matmuls and convolutions (bf16 autocast already accepts fewer mantissa bits), and
    cuDNN's autotuner: the image sizes are fixed within a run, so the tuned kernels are reused."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True


class Trainer:
    def __init__(self, cfg: TrainConfig, device: torch.device, world: int = 1):
        self.cfg, self.device, self.world = cfg, device, world
        if device.type == "cuda":
            enable_fast_cuda_math()  # once, as the run starts
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.G = Generator(cfg.g).to(device)
        self.D = Discriminator(cfg.d).to(device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # --compile: the forwards the main phases run. Off by default: on two CPU cores the
        # compile time (minutes) is never won back by a tiny run, and whether it pays on a GPU is
        # measured there. R1 keeps the eager D: compiled graphs have no double backward.
        self.g_forward = torch.compile(self.G) if cfg.compile else self.G
        self.d_forward = torch.compile(self.D) if cfg.compile else self.D
        # Lazy R1 is its own optimiser step every r1_interval steps (r1_phase): per r1_interval
        # main steps D takes r1_interval + 1 steps, so StyleGAN2 scales Adam's rate and beta2 by
        # r1_interval / (r1_interval + 1) to keep the same progress per image.
        ratio = cfg.r1_interval / (cfg.r1_interval + 1)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(0.0, 0.99), eps=1e-8)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d * ratio, betas=(0.0, 0.99 ** ratio),
                                      eps=1e-8)
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        self.rank = rank
        self.augment = Augment(cfg.aug, cfg.seed, rank)  # every image D scores, in every phase
        self.teacher: Generator | None = None
        self.lpips = LocalLPIPS(Path(cfg.lpips)).to(device) if cfg.lpips else None
        if self.lpips is not None:  # a resolution too small for its trunk fails here, as the run starts
            with torch.no_grad():
                probe = torch.zeros(2, cfg.d.img_channels, cfg.resolution, cfg.resolution, device=device)
                self.lpips.distance_map(probe, probe)
        self.step_index = 0

    def set_teacher(self, teacher: Generator) -> None:
        """Stage 2's frozen regulariser (checkpoint.build_generator makes one from saved weights)."""
        self.teacher = teacher.to(self.device).eval().requires_grad_(False)

    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()  # CPU stays in float32: resume must be exact

    def apply(self, opt: torch.optim.Optimizer, module: torch.nn.Module) -> None:
        """One optimiser step on the rank-averaged gradients; the spent gradients are freed, so
        only the phase under way holds any."""
        average_gradients(list(module.parameters()), self.world)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def fakes(self, z: torch.Tensor, transform: torch.Tensor, scale: torch.Tensor, size: int, part: slice,
              salt: int, update_avg: bool = False) -> torch.Tensor:
        """G's images of the micro-batch `part` for D. Stage global-360: each a frame-sized window
        across two neighbouring frames (networks/cross_frame.py), its offset drawn once per phase
        (`salt`) for the whole share, so that --batch-gpu chunks see what one batch would."""
        if self.cfg.stage != "global-360":
            return self.g_forward(z[part], transform[part], scale[part], size, update_avg=update_avg)
        offsets = splice_offsets(self.cfg.seed, self.rank, self.step_index, salt, z.shape[0], size)[part]
        return spliced_frames(self.g_forward, z[part], transform[part], scale[part], size, offsets, update_avg)

    def d_phase(self, real: torch.Tensor, transform: torch.Tensor, scale: torch.Tensor,
                z: torch.Tensor) -> dict[str, float]:
        """D's logistic loss on fakes and reals. Each micro-batch's loss is scaled by its share of
        the batch, so the accumulated gradient is the full batch's."""
        n, sums, reals = real.shape[0], {}, []
        with frozen(self.G):
            for part in micro_batches(n, self.cfg.batch_gpu):
                with torch.no_grad(), self.autocast():
                    fake = self.fakes(z, transform, scale, real.shape[-1], part, salt=0)
                with self.autocast():
                    fake_logits = self.d_forward(self.augment(fake.float()), scale[part])
                    real_logits = self.d_forward(self.augment(real[part]), scale[part])
                    loss = d_logistic(real_logits.float(), fake_logits.float())
                share = (part.stop - part.start) / n
                (loss * share).backward()
                _accumulate(sums, share, loss_D=loss, D_real=real_logits.float().mean(),
                            D_fake=fake_logits.float().mean())
                reals.append(real_logits.detach())
            self.apply(self.opt_d, self.D)
        # ADA counts D steps, so it sees the whole share's real logits once per step.
        self.augment.observe(torch.cat(reals), lambda t: dist.mean_(t, self.world), self.world)
        return {k: v.item() for k, v in sums.items()} | self.augment.stats()

    def r1_phase(self, real: torch.Tensor, scale: torch.Tensor) -> dict[str, float]:
        """Lazy R1 (StyleGAN2's Dreg): its own step on the real batch, weighted by the interval so
        that it averages to gamma/2 per step."""
        n, sums = real.shape[0], {}
        weight = self.cfg.gamma / 2 * self.cfg.r1_interval
        with frozen(self.G):  # G plays no part; frozen all the same, like every D phase
            for part in micro_batches(n, self.cfg.batch_gpu):
                x = real[part].detach().requires_grad_(True)
                with self.autocast():
                    logits = self.D(self.augment(x), scale[part])
                r1 = r1_penalty(logits.float(), x)
                share = (part.stop - part.start) / n
                (r1 * (weight * share)).backward()
                _accumulate(sums, share, R1=r1)
            self.apply(self.opt_d, self.D)
        return {k: v.item() for k, v in sums.items()}

    def teacher_term(self, fake: torch.Tensor, z: torch.Tensor, transform: torch.Tensor,
                     scale: torch.Tensor) -> torch.Tensor:
        """The frozen teacher's canvas for the same z, compared over the student's window: the
        patch's on a patch step, the whole frame on a global one (T = identity)."""
        res = self.cfg.resolution
        with torch.no_grad(), self.autocast():
            eye, r = identity_view(z.shape[0], res, z.device)
            target = self.teacher(z, eye, r, res).float()
        # Computed even at weight 0, so that an ablation shows what the regulariser prevents.
        with torch.set_grad_enabled(self.cfg.teacher_weight > 0 and torch.is_grad_enabled()):
            return teacher_loss(fake.float(), target, transform, scale, self.lpips, self.cfg.lpips_weight)

    def g_phase(self, transform: torch.Tensor, scale: torch.Tensor, z: torch.Tensor, size: int,
                with_teacher: bool) -> dict[str, float]:
        n, sums = z.shape[0], {}
        teach = with_teacher and self.teacher is not None
        with frozen(self.D):
            for part in micro_batches(n, self.cfg.batch_gpu):
                with self.autocast():
                    fake = self.fakes(z, transform, scale, size, part, salt=1, update_avg=True)
                    loss = g_nonsaturating(self.d_forward(self.augment(fake), scale[part]).float())
                share = (part.stop - part.start) / n
                _accumulate(sums, share, loss_G=loss)
                if teach:
                    tl = self.teacher_term(fake, z[part], transform[part], scale[part])
                    _accumulate(sums, share, teacher=tl)
                    if self.cfg.teacher_weight > 0:
                        loss = loss + self.cfg.teacher_weight * tl
                (loss * share).backward()
            self.apply(self.opt_g, self.G)
        # w_avg and the magnitude EMAs move once per step, by every chunk's and rank's statistics.
        self.G.commit_running_averages(lambda t: dist.mean_(t, self.world))
        return {k: v.item() for k, v in sums.items()}

    @torch.no_grad()
    def update_ema(self, batch: int) -> None:
        half_life = self.cfg.ema_kimg * 1000  # in images
        if self.cfg.ema_rampup is not None and self.cfg.stage == "global":
            half_life = min(half_life, self.step_index * batch * self.cfg.ema_rampup)  # images shown so far
        beta = 0.5 ** (batch / max(half_life, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def step(self, real: torch.Tensor, transform: torch.Tensor, scale: torch.Tensor, z_d: torch.Tensor,
             z_g: torch.Tensor, with_teacher: bool, global_batch: int) -> dict[str, float]:
        """One D update (two on R1 steps) and one G update on this rank's share of the batch;
        returns this rank's stats."""
        real, transform, scale = real.to(self.device), transform.to(self.device), scale.to(self.device)
        self.augment.reseed(self.step_index)
        stats = self.d_phase(real, transform, scale, z_d.to(self.device))
        if self.step_index % self.cfg.r1_interval == 0 and self.cfg.gamma > 0:
            stats.update(self.r1_phase(real, scale))
        stats.update(self.g_phase(transform, scale, z_g.to(self.device), real.shape[-1], with_teacher))
        self.update_ema(global_batch)
        self.step_index += 1
        return stats

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "G_ema": self.G_ema.state_dict(), "D": self.D.state_dict(),
                "opt_G": self.opt_g.state_dict(), "opt_D": self.opt_d.state_dict(), "step": self.step_index,
                "augment": self.augment.state_dict()}

    def load_state_dict(self, state: dict, networks_only: bool = False) -> None:
        self.G.load_state_dict(state["G"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.D.load_state_dict(state["D"])
        if not networks_only:
            self.opt_g.load_state_dict(state["opt_G"])
            self.opt_d.load_state_dict(state["opt_D"])
            self.step_index = int(state["step"])
            if "augment" in state:  # checkpoints from before augmentation start at p = 0
                self.augment.load_state_dict(state["augment"])
