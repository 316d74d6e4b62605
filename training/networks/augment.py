"""Discriminator augmentation for small datasets: ADA (Karras et al. 2020) and DiffAugment (Zhao
et al. 2020). Written from the papers' descriptions.

On a few hundred images D memorises the reals, its logits run away, and G's gradients turn to
noise. Both schemes show D only augmented images, reals and fakes alike (and the reals of R1), and
backpropagate G's loss through the augmentation, so G is still pushed towards the clean
distribution as long as every augmentation is applied with probability below ~0.8 (the ADA
paper's "non-leaking" condition: D can still tell which image was augmented how).

ADA tunes that probability p itself: every `interval` D steps it measures the overfitting
heuristic r_t = E[sign(D(real))] over all ranks and moves p towards r_t = target, at a speed
that takes p from 0 to 1 in `ada_kimg` thousand real images.

Scale conditioning: D also receives the scale S of each patch (DESIGN.md 3). A zoom by s would
show D a patch at S that looks like one at s*S, so the geometric transforms here are only the
ones that keep the pixel pitch: x-flip, 90-degree rotations, integer translation, arbitrary
rotation and fractional translation (reflect padding). ADA's isotropic and anisotropic scaling are
left out: no single S describes an anisotropic zoom, and zooming in at S = S_max would claim detail
above the native resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from plumbing.errors import ConfigError

Kind = Literal["ada", "diffaug", "none"]
KINDS = ("ada", "diffaug", "none")


@dataclass(frozen=True)
class AugmentConfig:
    kind: Kind = "ada"
    target: float = 0.6  # ADA: the r_t that p is steered to
    ada_kimg: float = 500.0  # ADA: thousands of real images for p to go from 0 to 1
    interval: int = 4  # ADA: D steps between adjustments of p

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"aug must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not (math.isfinite(self.target) and 0 <= self.target < 1):
            raise ConfigError(f"ada_target must be in [0, 1), got {self.target}")
        if not (math.isfinite(self.ada_kimg) and self.ada_kimg > 0):
            raise ConfigError(f"ada_kimg must be a finite number > 0, got {self.ada_kimg}")
        if self.interval < 1:
            raise ConfigError(f"ada interval must be at least 1, got {self.interval}")


# --- random draws ----------------------------------------------------------------------------
# Drawn on the CPU from the augmentation's own generator, re-seeded at every training step from
# (run seed, rank, step): a pure function of where the run is, so a resumed run draws exactly
# what the uninterrupted one drew (torch's global generator is also drawn from by the data
# loader whenever an epoch's iterator starts, which a resume does at another moment), and every
# rank draws its own augmentations for its own share.

def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    entropy = np.random.SeedSequence([seed, rank, step, 0xADA]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(entropy >> np.uint64(1)))


def _enabled(b: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(b, generator=gen) < p


def _lognormal(b: int, std: float, gen: torch.Generator) -> torch.Tensor:
    return torch.exp(torch.randn(b, generator=gen) * std)


# --- ADA: geometry ---------------------------------------------------------------------------

def _affine(b: int, a: torch.Tensor, c: torch.Tensor, s: torch.Tensor, d: torch.Tensor, tx: torch.Tensor,
            ty: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(b, 3, 3)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = a, c, tx
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = s, d, ty
    m[:, 2, 2] = 1
    return m


def _rotation(b: int, theta: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(theta), torch.sin(theta)
    return _affine(b, cos, -sin, sin, cos, torch.zeros(b), torch.zeros(b))


def _translation(b: int, tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    one, zero = torch.ones(b), torch.zeros(b)
    return _affine(b, one, zero, zero, one, tx, ty)


def geometry_matrix(b: int, size: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """Per sample, the map from output to input coordinates (affine_grid's [-1, 1] units), each
    transform on with probability p. A transform that is off contributes an exact identity."""
    eye = torch.eye(3).expand(b, 3, 3)
    pick = lambda on, m: torch.where(on.view(b, 1, 1), m, eye)  # noqa: E731
    one, zero = torch.ones(b), torch.zeros(b)
    flip = 1 - 2 * torch.randint(0, 2, (b,), generator=gen).float()
    quarter = torch.randint(0, 4, (b,), generator=gen).float() * (math.pi / 2)
    # Whole pixels (2/size in these units), up to 1/8 of the side: resampled exactly.
    shift = torch.round((torch.rand(b, 2, generator=gen) * 2 - 1) * 0.125 * size) * (2 / size)
    theta = (torch.rand(b, generator=gen) * 2 - 1) * math.pi
    frac = torch.randn(b, 2, generator=gen) * 0.125 * 2
    steps = [
        pick(_enabled(b, p, gen), _affine(b, flip, zero, zero, one, zero, zero)),
        pick(_enabled(b, p, gen), _rotation(b, quarter)),
        pick(_enabled(b, p, gen), _translation(b, shift[:, 0], shift[:, 1])),
        # ADA rotates before and after its anisotropic zoom, each with 1 - sqrt(1 - p); without the
        # zoom the two compose into one uniform rotation that is on with probability p.
        pick(_enabled(b, p, gen), _rotation(b, theta)),
        pick(_enabled(b, p, gen), _translation(b, frac[:, 0], frac[:, 1])),
    ]
    m = eye
    for step in steps:
        m = m @ step
    return m


def apply_geometry(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    moved = ~(m == torch.eye(3)).all(dim=(1, 2))
    if not moved.any():
        return x
    m = m.to(x.device)
    grid = F.affine_grid(m[:, :2], list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # Samples that drew no transform stay bit-identical rather than bilinearly re-sampled.
    return torch.where(moved.to(x.device).view(-1, 1, 1, 1), out, x)


# --- ADA: colour -----------------------------------------------------------------------------
# 4 x 4 matrices on homogeneous RGB in [-1, 1]: contrast, saturation and hue turn about mid-grey.

LUMA = torch.tensor([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3)


def _scale4(s: torch.Tensor) -> torch.Tensor:
    m = torch.diag_embed(torch.stack([s, s, s, torch.ones_like(s)], -1))
    return m


def _hue_rotation(theta: torch.Tensor) -> torch.Tensor:
    # Rodrigues' formula about the luma axis.
    b = theta.shape[0]
    v = LUMA[:3]
    k = torch.tensor([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    cos, sin = torch.cos(theta).view(b, 1, 1), torch.sin(theta).view(b, 1, 1)
    r = cos * torch.eye(3) + sin * k + (1 - cos) * torch.outer(v, v)
    m = torch.eye(4).repeat(b, 1, 1)
    m[:, :3, :3] = r
    return m


def colour_matrix(b: int, p: float, gen: torch.Generator) -> torch.Tensor:
    eye = torch.eye(4).expand(b, 4, 4)
    pick = lambda on, m: torch.where(on.view(b, 1, 1), m, eye)  # noqa: E731
    vv = torch.outer(LUMA, LUMA)
    brightness = torch.eye(4).repeat(b, 1, 1)
    brightness[:, :3, 3] = (torch.randn(b, generator=gen) * 0.2).view(b, 1)
    luma_flip = torch.eye(4) - 2 * vv * torch.randint(0, 2, (b,), generator=gen).float().view(b, 1, 1)
    sat = _lognormal(b, math.log(2), gen).view(b, 1, 1)
    saturation = vv + (torch.eye(4) - vv) * sat
    saturation[:, 3, 3] = 1
    steps = [
        pick(_enabled(b, p, gen), brightness),
        pick(_enabled(b, p, gen), _scale4(_lognormal(b, 0.5 * math.log(2), gen))),  # contrast
        pick(_enabled(b, p, gen), luma_flip),
        pick(_enabled(b, p, gen), _hue_rotation((torch.rand(b, generator=gen) * 2 - 1) * math.pi)),
        pick(_enabled(b, p, gen), saturation),
    ]
    m = eye
    for step in steps:
        m = step @ m  # each acts on the colour the previous one made
    return m


def apply_colour(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    changed = ~(m == torch.eye(4)).all(dim=(1, 2))
    if not changed.any():
        return x
    m = m.to(x.device)
    out = torch.einsum("bij,bjhw->bihw", m[:, :3, :3], x) + m[:, :3, 3].view(-1, 3, 1, 1)
    return torch.where(changed.to(x.device).view(-1, 1, 1, 1), out, x)


def ada(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """ADA's geometric and colour pipeline at probability p; p = 0 returns x itself."""
    if p <= 0:
        return x
    b = x.shape[0]
    return apply_colour(apply_geometry(x, geometry_matrix(b, x.shape[-1], p, gen)), colour_matrix(b, p, gen))


# --- DiffAugment -----------------------------------------------------------------------------

def diff_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Zhao et al.'s policy 'color,translation,cutout', always on, a fresh draw per sample."""
    b, _, h, w = x.shape
    dev = x.device
    u = torch.rand(b, 3, generator=gen).to(dev).view(b, 3, 1, 1, 1)
    x = x + (u[:, 0] - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (u[:, 1] * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (u[:, 2] + 0.5) + mean  # contrast
    # Translation by whole pixels, up to 1/8 of the side, zero fill: nearest sampling is exact.
    reach = int(h * 0.125 + 0.5)
    shift = torch.randint(-reach, reach + 1, (b, 2), generator=gen).float() * torch.tensor([2 / w, 2 / h])
    m = _translation(b, shift[:, 0], shift[:, 1]).to(dev)
    grid = F.affine_grid(m[:, :2], list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    # Cutout: a square of half the side, anywhere, even partly outside.
    side = int(h * 0.5 + 0.5)
    corner = torch.stack([torch.randint(0, w + (1 - side % 2), (b,), generator=gen),
                          torch.randint(0, h + (1 - side % 2), (b,), generator=gen)], -1) - side // 2
    corner = corner.to(dev)
    cols = torch.arange(w, device=dev).view(1, w) - corner[:, :1]
    rows = torch.arange(h, device=dev).view(1, h) - corner[:, 1:]
    inside = ((rows >= 0) & (rows < side)).view(b, h, 1) & ((cols >= 0) & (cols < side)).view(b, 1, w)
    return x * (~inside).unsqueeze(1).to(x.dtype)


# --- the module the trainer holds ------------------------------------------------------------

class Augment:
    """What D sees: `augment(images)` for every image D scores; `observe(real_logits)` after each
    D step to let ADA steer p. Its state (p and the partial statistics) goes into checkpoints."""

    def __init__(self, cfg: AugmentConfig, seed: int = 0, rank: int = 0):
        self.cfg, self.seed, self.rank = cfg, seed, rank
        self.gen = step_generator(seed, rank, 0)
        self.p = 0.0
        self.observed = 0  # D steps since the last adjustment
        self.signs: torch.Tensor | None = None  # [sum of sign(D(real)), count], rank means

    def reseed(self, step: int) -> None:
        """The draws of training step `step`: call before its first augmentation."""
        self.gen = step_generator(self.seed, self.rank, step)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.kind == "none" or (self.cfg.kind == "ada" and self.p <= 0):
            return x
        # Geometry in float32 whatever autocast is on: bf16 grids are off by up to ~1/128 of the side.
        gen = self.gen
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            return ada(x, self.p, gen) if self.cfg.kind == "ada" else diff_augment(x, gen)

    @torch.no_grad()
    def observe(self, real_logits: torch.Tensor, mean: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
                world: int = 1) -> None:
        """Accumulate r_t's statistics, averaged over the ranks with `mean` (in place, like
        dist.mean_), and every `interval` calls move p. Every rank calls this at the same point
        of every D step, so the all-reduces pair up and all ranks hold the same statistics and p:
        rank 0's checkpoint is every rank's state."""
        if self.cfg.kind != "ada":
            return
        logits = real_logits.detach().float()
        s = torch.stack([logits.sign().sum(), torch.tensor(float(logits.numel()), device=logits.device)]).double()
        s = mean(s)  # two numbers: no sync until they are read
        self.signs = s if self.signs is None else self.signs.to(s.device) + s
        self.observed += 1
        if self.observed < self.cfg.interval:
            return
        total, count = self.signs.tolist()  # one sync every `interval` steps, as in ADA
        rt, images = total / max(count, 1e-8), count * world
        if rt != self.cfg.target:
            self.p += math.copysign(images / (self.cfg.ada_kimg * 1000), rt - self.cfg.target)
            self.p = min(max(self.p, 0.0), 1.0)
        self.signs, self.observed = None, 0

    def stats(self) -> dict[str, float]:
        return {"aug_p": self.p} if self.cfg.kind == "ada" else {}

    def state_dict(self) -> dict:
        signs = self.signs.cpu() if self.signs is not None else torch.zeros(2, dtype=torch.float64)
        return {"p": self.p, "observed": self.observed, "signs": signs}

    def load_state_dict(self, state: dict) -> None:
        self.p, self.observed = float(state["p"]), int(state["observed"])
        self.signs = state["signs"].double() if self.observed else None
