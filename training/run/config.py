"""One training run's config tree, and the named presets it starts from.

    TrainConfig
      g: GeneratorConfig         the generator; g.resolution is R
      d: DiscriminatorConfig     the discriminator; d.resolution is p
      aug: AugmentConfig         the augmentation of every image D sees (ADA by default)
      loader: LoaderConfig       the dataset and how it is read: the global batch, the run's seed,
        stream: StreamConfig     shuffling and workers; its stream is stage 2's patch stream (its
                                 mirror flips both streams: loop.make_streams)
      stage, optimisation, teacher, schedule, metrics: flat fields; data_hr: stage 2's patch dataset

Each setting lives in one place. A run derives what depends on the world size or the stream
(each rank's share of the batch, each stream's seed, the global stream at R) in `loop.py`;
nothing derived is saved. Presets are TrainConfig instances; the CLI changes them with
`dataclasses.replace`, and every value is checked here, once, as the tree is built.

`tiny` keeps StyleGAN3-T's structure at R = p = 32 (6 layers, 32 to 16 channels) so that it
trains visibly on two CPU cores in minutes; `sg3t-256` is StyleGAN3-T at 256 px with the paper's
hyperparameters (14 layers, channel_base 32768, channel_max 512: 27.9 M synthesis parameters by
the published formula, synthesis_plan.py; batch 32, gamma 2, lr G 0.0025 / D 0.002, EMA 10 kimg,
mapping depth 2). Both train on StyleGAN3's grids and render images on exact ones (generator.py).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

from plumbing.errors import ConfigError

from ..eval.names import parse_metrics
from ..loader.pipeline import LoaderConfig
from ..loader.sampler import StreamConfig
from ..networks.augment import AugmentConfig
from ..networks.discriminator import DiscriminatorConfig
from ..networks.generator import GeneratorConfig

Stage = Literal["global", "patch", "global-360"]  # global-360: frames of panoramas, a 360° generator


@dataclass(frozen=True)
class TrainConfig:
    out: str
    loader: LoaderConfig  # batch_size: the global batch, all ranks together; seed: the run's seed
    stage: Stage = "global"
    preset: str = "tiny"
    g: GeneratorConfig = field(default_factory=GeneratorConfig)
    d: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    aug: AugmentConfig = field(default_factory=AugmentConfig)  # what D sees: ADA, DiffAugment or none
    kimg: float = 100.0  # total training length, in thousands of real images shown (all ranks)
    lr_g: float = 0.0025
    lr_d: float = 0.002
    gamma: float = 2.0  # R1 weight
    r1_interval: int = 16  # lazy regularisation: R1 every this many D steps
    ema_kimg: float = 10.0
    # StyleGAN3's ramp-up: the EMA's half-life is at most this fraction of the images shown, so
    # the young G_ema is not an average over random initial weights. Stage global only: stage
    # patch continues stage 1's trained G_ema. None: off.
    ema_rampup: float | None = 0.05
    batch_gpu: int | None = None  # micro-batch per device (gradient accumulation); None: the rank's share
    compile: bool = False  # torch.compile G's and D's forward (trainer.py says where it pays)
    patch_prob: float = 0.5  # stage patch: probability that a step uses a patch batch
    teacher: str | None = None  # stage patch: a stage-1 checkpoint or network snapshot (its G_ema teaches)
    # Stage patch: the dataset the patch stream draws from (the paper: a high-resolution subset);
    # None: loader.data, which the global stream reads in any case.
    data_hr: str | None = None
    teacher_weight: float = 5.0
    lpips: str | None = None  # LPIPS weights, a plain state dict (networks/lpips.py); None: L1 only
    lpips_weight: float = 1.0
    tick_kimg: float = 1.0
    snap_ticks: int = 10
    resume: bool = False
    # Metrics during training (training/eval): rank 0 scores G_ema every metric_ticks ticks and at
    # the end, right after writing that tick's snapshot (a metric tick always writes one, so every
    # result names a file anyres-eval can score again). None: every snapshot. metric_n images or
    # patches per set: a small n keeps the pause short, but FID is biased upward at small n.
    report: bool = True  # anyres-train train writes RUN/report.html after the run (run/run_report.py; about 2 s)
    metrics: tuple[str, ...] = ()
    metric_ticks: int | None = None
    metric_n: int = 1000

    def __post_init__(self) -> None:
        if self.stage not in ("global", "patch", "global-360"):
            raise ConfigError(f"stage must be 'global', 'patch' or 'global-360', got {self.stage!r}")
        if (self.stage == "global-360") != (self.g.fov is not None):
            raise ConfigError("a 360° generator (fov) trains in stage global-360, and only it: stage global-360 "
                              "needs g.fov, stages global and patch a plane (fov None)")
        if not 0 <= self.patch_prob <= 1:
            raise ConfigError(f"--patch-prob must be in [0, 1], got {self.patch_prob}")
        if self.loader.stream.stream != "patch":
            raise ConfigError("the run's loader stream is stage 2's patch stream")
        if self.patch_size != self.d.resolution:
            raise ConfigError("the discriminator must see p x p images")
        step = self.g.size_step()
        if self.patch_size % step or self.resolution % step:
            raise ConfigError(f"R = {self.resolution} and p = {self.patch_size} must be multiples of {step}: the "
                              "generator's coarsest grid must tile them")
        if self.loader.stream.min_scale < self.resolution:
            # DESIGN.md 3: R <= S. Below R a patch would show less than the global generator does.
            raise ConfigError(f"s_min {self.loader.stream.min_scale:g} is below the base resolution "
                              f"R = {self.resolution}")
        if self.data_hr is not None and self.stage != "patch":
            raise ConfigError("--data-hr is the patch stream's dataset: it needs --stage patch")
        if min(self.batch, self.r1_interval, self.snap_ticks) < 1 or not (self.kimg > 0 and self.tick_kimg > 0):
            raise ConfigError("batch, r1_interval, snap_ticks, kimg and tick_kimg must be positive")
        rates = {"kimg": self.kimg, "tick_kimg": self.tick_kimg, "ema_kimg": self.ema_kimg, "lr_g": self.lr_g,
                 "lr_d": self.lr_d, "gamma": self.gamma, "teacher_weight": self.teacher_weight,
                 "lpips_weight": self.lpips_weight}
        for name, value in rates.items():
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value}")
        if self.ema_rampup is not None and not (math.isfinite(self.ema_rampup) and 0 < self.ema_rampup <= 1):
            raise ConfigError(f"ema_rampup must be in (0, 1] or None (off), got {self.ema_rampup}")
        if self.batch_gpu is not None and not 1 <= self.batch_gpu <= self.batch:
            raise ConfigError(f"batch_gpu must be between 1 and the batch {self.batch}, got {self.batch_gpu}")
        if self.metrics:
            try:  # names checked and aliases resolved (kid -> kid-full) once, here, as anyres-eval does
                object.__setattr__(self, "metrics", parse_metrics(",".join(self.metrics)))
            except ValueError as exc:
                raise ConfigError(f"--metrics: {exc}") from None
        if self.metric_ticks is not None and self.metric_ticks < 1:
            raise ConfigError(f"metric_ticks must be at least 1 (or None: every snapshot), got {self.metric_ticks}")
        if self.metric_n < 2:
            raise ConfigError(f"metric_n must be at least 2 (a statistic of one image is none), got {self.metric_n}")

    # Names for the settings the loop reads most, wherever they live in the tree.
    @property
    def data(self) -> str:
        return self.loader.data

    @property
    def patch_data(self) -> str:
        """The dataset stage 2's patch stream reads."""
        return self.data if self.data_hr is None else self.data_hr

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

    @property
    def metric_interval(self) -> int:
        """Ticks between metric evaluations (given, or the snapshot interval)."""
        return self.metric_ticks if self.metric_ticks is not None else self.snap_ticks

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
        GeneratorConfig(resolution=32, z_dim=64, w_dim=64, mapping_layers=2, num_layers=6, critical_layers=2,
                        channel_base=512, channel_max=32, scale_dim=32),
        DiscriminatorConfig(resolution=32, channel_base=1024, channel_max=64, mbstd_group=4, scale_dim=32,
                            base_resolution=32),
        batch=16, lr_g=0.0025, lr_d=0.0025, gamma=0.1, ema_kimg=0.5, tick_kimg=0.32, snap_ticks=10, kimg=10.0,
        # 64 per set: EfficientNet at 224 px takes ~0.2 s an image on a CPU, ~13 s a generated set.
        metric_n=64, aug=AugmentConfig(ada_kimg=5.0)),  # 100x StyleGAN3's ADA speed: p moves within a few kimg
    "sg3t-256": _preset(
        "sg3t-256",
        GeneratorConfig(resolution=256, z_dim=512, w_dim=512, mapping_layers=2, num_layers=14, critical_layers=2,
                        channel_base=32768, channel_max=512, scale_dim=64),
        DiscriminatorConfig(resolution=256, channel_base=32768, channel_max=512, mbstd_group=4, scale_dim=64,
                            base_resolution=256),
        batch=32, lr_g=0.0025, lr_d=0.002, gamma=2.0, ema_kimg=10.0, tick_kimg=4.0, snap_ticks=50, kimg=25000.0),
}


def without_scale_cond(cfg: TrainConfig) -> TrainConfig:
    """The ablation: neither network sees the scale S."""
    return dataclasses.replace(cfg, g=dataclasses.replace(cfg.g, scale_cond=False),
                               d=dataclasses.replace(cfg.d, scale_cond=False))
