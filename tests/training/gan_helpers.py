"""Small datasets and tiny network configs for the GAN tests: R = p = 16, a few narrow layers,
so a step takes a few tens of milliseconds on two CPU cores."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from tests.factories import encode, gradient, write_dataset
from training.networks.discriminator import DiscriminatorConfig
from training.networks.generator import GeneratorConfig
from training.run.config import TrainConfig, loader_settings, without_scale_cond

TINY_G = GeneratorConfig(resolution=16, z_dim=16, w_dim=16, mapping_layers=2, num_layers=3, critical_layers=1,
                         channel_base=256, channel_max=16, scale_dim=16)
TINY_D = DiscriminatorConfig(resolution=16, channel_base=256, channel_max=32, mbstd_group=2, scale_dim=16,
                             base_resolution=16)


def gan_dataset(root: Path, n: int = 24, size: tuple[int, int] = (64, 48)) -> Path:
    """Smooth sinusoidal images: easy enough that a tiny GAN visibly learns them."""
    write_dataset(root, [encode(gradient(*size, seed=i), "PNG") for i in range(n)])
    return root


TINY = TrainConfig(out="", loader=loader_settings("", patch_size=16, s_min=16, batch=8, shuffle_buffer=32),
                   preset="test", g=TINY_G, d=TINY_D, lr_g=0.002, lr_d=0.002, gamma=0.05, r1_interval=4,
                   ema_kimg=0.1, tick_kimg=0.04, snap_ticks=2, kimg=0.16,
                   report=False)  # 2 s a run; test_report_html.py trains with it


def tiny_config(data: Path, out: Path, scale_cond: bool = True, **overrides) -> TrainConfig:
    cfg = dataclasses.replace(TINY, out=str(out), loader=dataclasses.replace(TINY.loader, data=str(data)),
                              **overrides)
    return cfg if scale_cond else without_scale_cond(cfg)


SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
