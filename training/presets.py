"""Training configuration: the frozen dataclass the CLI fills in, and the named presets.

`tiny` is sized to train visibly on two CPU cores in minutes (R = p = 32, narrow layers);
`sg3t-256` holds the paper's StyleGAN3-T hyperparameters at 256 px (batch 32, gamma 2, lr G
0.0025 / D 0.002, EMA 10 kimg, mapping depth 2). Its synthesis widths are narrower than
StyleGAN3's because every layer here runs at the output's sampling rate plus margin (generator.py)
instead of growing from 36 px: 8 layers of 128 down to 48 channels keep a step affordable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from .discriminator import DiscriminatorConfig
from .generator import GeneratorConfig

Stage = Literal["global", "patch"]


@dataclass(frozen=True)
class TrainConfig:
    data: str
    out: str
    stage: Stage = "global"
    preset: str = "tiny"
    g: GeneratorConfig = field(default_factory=GeneratorConfig)
    d: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    patch_size: int = 256  # p; the global stream renders at R = g.resolution
    kimg: float = 100.0  # total training length, in thousands of real images shown (all ranks)
    batch: int = 32  # global batch, all ranks together
    lr_g: float = 0.0025
    lr_d: float = 0.002
    gamma: float = 2.0  # R1 weight
    r1_interval: int = 16  # lazy regularisation: R1 every this many D steps
    ema_kimg: float = 10.0
    patch_prob: float = 0.5  # stage patch: probability that a step uses a patch batch
    teacher: str | None = None  # stage patch: the stage-1 checkpoint (its G_ema is the teacher)
    teacher_weight: float = 5.0
    lpips: str | None = None  # local LPIPS network file (torch.export .pt2 or TorchScript); None: L1 only
    lpips_weight: float = 1.0
    s_max: float | None = None  # cap on the patch scale S
    distribution: Literal["uniform", "log-uniform"] = "uniform"
    seed: int = 0
    tick_kimg: float = 1.0
    snap_ticks: int = 10
    workers: int = 0
    shuffle_buffer: int = 256
    resume: bool = False

    def __post_init__(self) -> None:
        if self.stage not in ("global", "patch"):
            raise ValueError(f"stage must be 'global' or 'patch', got {self.stage!r}")
        if not 0 <= self.patch_prob <= 1:
            raise ValueError(f"--patch-prob must be in [0, 1], got {self.patch_prob}")
        if self.patch_size != self.d.resolution:
            raise ValueError("the discriminator must see p x p images")
        if min(self.batch, self.r1_interval, self.snap_ticks) < 1 or self.kimg <= 0 or self.tick_kimg <= 0:
            raise ValueError("batch, r1_interval, snap_ticks, kimg and tick_kimg must be positive")

    @property
    def resolution(self) -> int:
        return self.g.resolution

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        g = dict(d.pop("g"))
        g["channels"] = tuple(g["channels"])
        return cls(g=GeneratorConfig(**g), d=DiscriminatorConfig(**d.pop("d")), **d)


PRESETS = {
    "tiny": dict(
        g=dict(resolution=32, z_dim=64, w_dim=64, mapping_layers=2, channels=(48, 48, 32),
               fourier_features=64, octaves=2.0, filter_half=2, scale_dim=32),
        d=dict(channel_base=1024, channel_max=64, mbstd_group=4, scale_dim=32),
        train=dict(patch_size=32, batch=16, lr_g=0.0025, lr_d=0.0025, gamma=0.1, ema_kimg=0.5,
                   tick_kimg=0.32, snap_ticks=10, kimg=10.0),
    ),
    "sg3t-256": dict(
        g=dict(resolution=256, z_dim=512, w_dim=512, mapping_layers=2, channels=(128, 128, 128, 96, 96, 64, 64, 48),
               fourier_features=512, octaves=3.0, filter_half=3, scale_dim=64),
        d=dict(channel_base=32768, channel_max=512, mbstd_group=4, scale_dim=64),
        train=dict(patch_size=256, batch=32, lr_g=0.0025, lr_d=0.002, gamma=2.0, ema_kimg=10.0,
                   tick_kimg=4.0, snap_ticks=50, kimg=25000.0),
    ),
}


def build_config(preset: str, data: str, out: str, scale_cond: bool = True, **overrides) -> TrainConfig:
    """A preset with explicit overrides (None means 'keep the preset's value')."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    p = PRESETS[preset]
    train = {**p["train"], **{k: v for k, v in overrides.items() if v is not None}}
    g = GeneratorConfig(**{**p["g"], "scale_cond": scale_cond})
    d = DiscriminatorConfig(**{**p["d"], "resolution": train["patch_size"], "scale_cond": scale_cond,
                               "base_resolution": g.resolution})
    return TrainConfig(data=data, out=out, preset=preset, g=g, d=d, **train)
