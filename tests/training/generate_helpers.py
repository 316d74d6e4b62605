"""Snapshots for the anyres-generate tests: TINY_G with perturbed weights (so that images have
structure at every scale), and MICRO_G, smaller still, for the 8192 x 8192 memory test."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from training import checkpoint
from training.networks.discriminator import Discriminator
from training.networks.generator import Generator, GeneratorConfig

from .gan_helpers import TINY_D, TINY_G, tiny_config

# Two layers of 4 channels: a 128 px tile in about 10 ms on one core.
MICRO_G = GeneratorConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=1, num_layers=2, critical_layers=1,
                          channel_base=16, channel_max=4, scale_dim=8)


def save_snapshot(path: Path, g_cfg: GeneratorConfig = TINY_G, seed: int = 0) -> Path:
    """A network-snapshot-*.pt as training writes it: G, G_ema, D, the config and the step."""
    torch.manual_seed(seed)
    g = Generator(g_cfg)
    with torch.no_grad():  # a fresh network is smooth; perturbed weights give detail to compare at borders
        for p in g.parameters():
            p.add_(0.1 * torch.randn_like(p))
    config = tiny_config("unused", path.parent).to_dict()
    config["g"] = dataclasses.asdict(g_cfg)
    state = {"G": g.state_dict(), "G_ema": g.state_dict(), "D": Discriminator(TINY_D).state_dict(),
             "config": config, "step": 0}
    checkpoint.save(path, state)
    return path
