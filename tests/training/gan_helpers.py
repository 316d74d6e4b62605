"""Small datasets and tiny network configs for the GAN tests: R = p = 16, a few narrow layers,
so a step takes a few tens of milliseconds on two CPU cores."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch

from training.discriminator import DiscriminatorConfig
from training.generator import GeneratorConfig
from training.presets import TrainConfig

from ..shards.images import encode, gradient
from .helpers import write_dataset

TINY_G = GeneratorConfig(resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channels=(24, 16), fourier_features=32,
                         octaves=2.0, filter_half=2, scale_dim=16)
TINY_D = DiscriminatorConfig(resolution=16, channel_base=256, channel_max=32, mbstd_group=2, scale_dim=16,
                             base_resolution=16)


def gan_dataset(root: Path, n: int = 24, size: tuple[int, int] = (64, 48)) -> Path:
    """Smooth sinusoidal images: easy enough that a tiny GAN visibly learns them."""
    write_dataset(root, [encode(gradient(*size, seed=i), "PNG") for i in range(n)])
    return root


def tiny_config(data: Path, out: Path, **overrides) -> TrainConfig:
    base = dict(data=str(data), out=str(out), preset="test", g=TINY_G, d=TINY_D, patch_size=16, batch=8,
                lr_g=0.002, lr_d=0.002, gamma=0.05, r1_interval=4, ema_kimg=0.1, tick_kimg=0.04, snap_ticks=2,
                kimg=0.16, shuffle_buffer=32)
    scale_cond = overrides.pop("scale_cond", True)
    cfg = TrainConfig(**{**base, **overrides})
    return dataclasses.replace(cfg, g=dataclasses.replace(cfg.g, scale_cond=scale_cond),
                               d=dataclasses.replace(cfg.d, scale_cond=scale_cond))


@pytest.fixture
def one_thread():
    """Tiny networks run fastest on one thread, and steadily: with two threads on two shared
    cores, OpenMP's spinning makes a step up to ten times slower whenever anything else runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
