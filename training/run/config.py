"""One training run's config tree, and the named presets it starts from.

    TrainConfig
      g: GeneratorConfig         the generator; g.resolution is R
      d: DiscriminatorConfig     the discriminator; d.resolution is p
      loader: LoaderConfig       the dataset and how it is read: the global batch, the run's seed,
        stream: StreamConfig     shuffling and workers; its stream is stage 2's patch stream
      stage, optimisation, teacher, schedule: flat fields

Each setting lives in one place. A run derives what depends on the world size or the stream
(each rank's share of the batch, each stream's seed, the global stream at R) in `loop.py`;
nothing derived is saved. Presets are TrainConfig instances; the CLI changes them with
`dataclasses.replace`, and every value is checked here, once, as the tree is built.

`tiny` is sized to train visibly on two CPU cores in minutes (R = p = 32, narrow layers);
`sg3t-256` holds the paper's StyleGAN3-T hyperparameters at 256 px (batch 32, gamma 2, lr G
0.0025 / D 0.002, EMA 10 kimg, mapping depth 2). Its synthesis widths are narrower than
StyleGAN3's because every layer here runs at the output's sampling rate plus margin (generator.py)
instead of growing from 36 px: 8 layers of 128 down to 48 channels keep a step affordable.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

from shards.errors import ConfigError

from ..loader.pipeline import LoaderConfig
from ..loader.sampler import StreamConfig
from ..networks.discriminator import DiscriminatorConfig
from ..networks.generator import GeneratorConfig

Stage = Literal["global", "patch"]


@dataclass(frozen=True)
class TrainConfig:
    out: str
    loader: LoaderConfig  # batch_size: the global batch, all ranks together; seed: the run's seed
    stage: Stage = "global"
    preset: str = "tiny"
    g: GeneratorConfig = field(default_factory=GeneratorConfig)
    d: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    kimg: float = 100.0  # total training length, in thousands of real images shown (all ranks)
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
    tick_kimg: float = 1.0
    snap_ticks: int = 10
    resume: bool = False

    def __post_init__(self) -> None:
        if self.stage not in ("global", "patch"):
            raise ConfigError(f"stage must be 'global' or 'patch', got {self.stage!r}")
        if not 0 <= self.patch_prob <= 1:
            raise ConfigError(f"--patch-prob must be in [0, 1], got {self.patch_prob}")
        if self.loader.stream.stream != "patch":
            raise ConfigError("the run's loader stream is stage 2's patch stream")
        if self.patch_size != self.d.resolution:
            raise ConfigError("the discriminator must see p x p images")
        if min(self.batch, self.r1_interval, self.snap_ticks) < 1 or not (self.kimg > 0 and self.tick_kimg > 0):
            raise ConfigError("batch, r1_interval, snap_ticks, kimg and tick_kimg must be positive")
        rates = {"kimg": self.kimg, "tick_kimg": self.tick_kimg, "ema_kimg": self.ema_kimg, "lr_g": self.lr_g,
                 "lr_d": self.lr_d, "gamma": self.gamma, "teacher_weight": self.teacher_weight,
                 "lpips_weight": self.lpips_weight}
        for name, value in rates.items():
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value}")

    # Names for the settings the loop reads most, wherever they live in the tree.
    @property
    def data(self) -> str:
        return self.loader.data

    @property
    def batch(self) -> int:
        return self.loader.batch_size

    @property
    def seed(self) -> int:
        return self.loader.seed

    @property
    def patch_size(self) -> int:
        return self.loader.stream.size

    @property
    def resolution(self) -> int:
        return self.g.resolution

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def loader_settings(data: str, patch_size: int, s_min: float, batch: int, shuffle_buffer: int = 256,
                    seed: int = 0) -> LoaderConfig:
    """How a run reads its data: float batches in [-1, 1], a short start-up fill of the buffer."""
    return LoaderConfig(data, StreamConfig("patch", size=patch_size, s_min=s_min), batch_size=batch, seed=seed,
                        shuffle_buffer=shuffle_buffer, shuffle_initial=min(64, shuffle_buffer), dtype="float")


def _preset(name: str, g: GeneratorConfig, d: DiscriminatorConfig, batch: int, **train) -> TrainConfig:
    # A patch renders the canvas at S >= R: never below the global generator's own resolution.
    p = d.resolution
    loader = loader_settings("", p, max(g.resolution, p), batch)
    return TrainConfig(out="", loader=loader, preset=name, g=g, d=d, **train)


PRESETS = {
    "tiny": _preset(
        "tiny",
        GeneratorConfig(resolution=32, z_dim=64, w_dim=64, mapping_layers=2, channels=(48, 48, 32),
                        fourier_features=64, octaves=2.0, filter_half=2, scale_dim=32),
        DiscriminatorConfig(resolution=32, channel_base=1024, channel_max=64, mbstd_group=4, scale_dim=32,
                            base_resolution=32),
        batch=16, lr_g=0.0025, lr_d=0.0025, gamma=0.1, ema_kimg=0.5, tick_kimg=0.32, snap_ticks=10, kimg=10.0),
    "sg3t-256": _preset(
        "sg3t-256",
        GeneratorConfig(resolution=256, z_dim=512, w_dim=512, mapping_layers=2,
                        channels=(128, 128, 128, 96, 96, 64, 64, 48), fourier_features=512, octaves=3.0,
                        filter_half=3, scale_dim=64),
        DiscriminatorConfig(resolution=256, channel_base=32768, channel_max=512, mbstd_group=4, scale_dim=64,
                            base_resolution=256),
        batch=32, lr_g=0.0025, lr_d=0.002, gamma=2.0, ema_kimg=10.0, tick_kimg=4.0, snap_ticks=50, kimg=25000.0),
}


def without_scale_cond(cfg: TrainConfig) -> TrainConfig:
    """The ablation: neither network sees the scale S."""
    return dataclasses.replace(cfg, g=dataclasses.replace(cfg.g, scale_cond=False),
                               d=dataclasses.replace(cfg.d, scale_cond=False))
