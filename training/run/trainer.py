"""One optimisation step of the any-resolution GAN, on whatever batch the loop hands it.

The networks, optimisers and EMA live here; data, ticks and files live in loop.py. A step is a
D phase (logistic loss, lazy R1) and a G phase (non-saturating loss, plus the teacher loss on
patch batches in stage 2), each followed by one all-reduce that averages gradients over ranks,
so every rank applies the same update and the weights never drift apart.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import torch

from ..networks.discriminator import Discriminator
from ..networks.generator import Generator
from ..networks.losses import LocalLPIPS, d_logistic, g_nonsaturating, r1_penalty, teacher_loss
from ..networks.render import identity_view
from . import dist
from .config import TrainConfig


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Sum gradients over ranks in one flat all-reduce and divide by the world size."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = dist.mean_(torch.cat([g.flatten() for g in grads]), world)
    torch.nan_to_num_(flat, nan=0, posinf=1e5, neginf=-1e5)  # one bad sample must not poison Adam
    for p, g in zip(params, flat.split([q.numel() for q in params])):
        p.grad = g.view_as(p)


class Trainer:
    def __init__(self, cfg: TrainConfig, device: torch.device, world: int = 1):
        self.cfg, self.device, self.world = cfg, device, world
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.G = Generator(cfg.g).to(device)
        self.D = Discriminator(cfg.d).to(device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # Lazy R1 runs every r1_interval steps with its weight scaled up to match; StyleGAN2
        # adjusts Adam's rate and beta2 so the combined update keeps its meaning.
        ratio = cfg.r1_interval / (cfg.r1_interval + 1)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(0.0, 0.99), eps=1e-8)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d * ratio, betas=(0.0, 0.99 ** ratio),
                                      eps=1e-8)
        self.teacher: Generator | None = None
        self.lpips = LocalLPIPS(Path(cfg.lpips)).to(device) if cfg.lpips else None
        self.step_index = 0

    def set_teacher(self, teacher: Generator) -> None:
        """Stage 2's frozen regulariser (checkpoint.build_generator makes one from saved weights)."""
        self.teacher = teacher.to(self.device).eval().requires_grad_(False)

    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()  # CPU stays in float32: resume must be exact

    def d_phase(self, real: torch.Tensor, transform: torch.Tensor, scale: torch.Tensor,
                z: torch.Tensor) -> dict[str, float]:
        do_r1 = self.step_index % self.cfg.r1_interval == 0 and self.cfg.gamma > 0
        with torch.no_grad(), self.autocast():
            fake = self.G(z, transform, scale, real.shape[-1])
        self.opt_d.zero_grad(set_to_none=True)
        real = real.detach().requires_grad_(do_r1)
        with self.autocast():
            fake_logits = self.D(fake.float(), scale)
            real_logits = self.D(real, scale)
            loss = d_logistic(real_logits.float(), fake_logits.float())
        stats = {"loss_D": loss.item(), "D_real": real_logits.mean().item(), "D_fake": fake_logits.mean().item()}
        if do_r1:
            r1 = r1_penalty(real_logits.float(), real)
            loss = loss + r1 * (self.cfg.gamma / 2) * self.cfg.r1_interval
            stats["R1"] = r1.item()
        loss.backward()
        average_gradients(list(self.D.parameters()), self.world)
        self.opt_d.step()
        return stats

    def g_phase(self, transform: torch.Tensor, scale: torch.Tensor, z: torch.Tensor, size: int,
                with_teacher: bool) -> dict[str, float]:
        self.opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            fake = self.G(z, transform, scale, size, update_avg=True)
            loss = g_nonsaturating(self.D(fake, scale).float())
        stats = {"loss_G": loss.item()}
        if with_teacher and self.teacher is not None:
            with torch.no_grad(), self.autocast():
                eye, r = identity_view(z.shape[0], self.cfg.resolution, z.device)
                target = self.teacher(z, eye, r, self.cfg.resolution).float()
            # Logged even at weight 0, so that an ablation shows what the regulariser prevents.
            with torch.set_grad_enabled(self.cfg.teacher_weight > 0):
                tl = teacher_loss(fake.float(), target, transform, scale, self.lpips, self.cfg.lpips_weight)
            if self.cfg.teacher_weight > 0:
                loss = loss + self.cfg.teacher_weight * tl
            stats["teacher"] = tl.item()
        loss.backward()
        average_gradients(list(self.G.parameters()), self.world)
        self.opt_g.step()
        # The running mean of w is linear in the batch: averaging it over ranks is exact.
        dist.mean_(self.G.mapping.w_avg, self.world)
        return stats

    @torch.no_grad()
    def update_ema(self, batch: int) -> None:
        beta = 0.5 ** (batch / max(self.cfg.ema_kimg * 1000, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def step(self, real: torch.Tensor, transform: torch.Tensor, scale: torch.Tensor, z_d: torch.Tensor,
             z_g: torch.Tensor, with_teacher: bool, global_batch: int) -> dict[str, float]:
        """One D and one G update on this rank's share of the batch; returns this rank's stats."""
        real, transform, scale = real.to(self.device), transform.to(self.device), scale.to(self.device)
        stats = self.d_phase(real, transform, scale, z_d.to(self.device))
        stats.update(self.g_phase(transform, scale, z_g.to(self.device), real.shape[-1], with_teacher))
        self.update_ema(global_batch)
        self.step_index += 1
        return stats

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "G_ema": self.G_ema.state_dict(), "D": self.D.state_dict(),
                "opt_G": self.opt_g.state_dict(), "opt_D": self.opt_d.state_dict(), "step": self.step_index}

    def load_state_dict(self, state: dict, networks_only: bool = False) -> None:
        self.G.load_state_dict(state["G"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.D.load_state_dict(state["D"])
        if not networks_only:
            self.opt_g.load_state_dict(state["opt_G"])
            self.opt_d.load_state_dict(state["opt_D"])
            self.step_index = int(state["step"])
