"""What the anyres-eval tests share: a cheap feature network that counts its calls, and a run
folder holding snapshots of the tiny generator."""

from __future__ import annotations

from pathlib import Path

import torch

from training import checkpoint
from training.eval.features import FeatureNet
from training.run.trainer import Trainer

from .gan_helpers import tiny_config


class CountingFeatures(FeatureNet):
    """Per-channel means, deviations and a gradient energy: 9 numbers that differ between
    image sets, in microseconds. `name` goes into cache keys like a real network's."""

    comparable = False
    dim = 9

    def __init__(self, name: str = "counting-test-features"):
        super().__init__()
        self.name = name

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = images.double() / 255
        grad = (x[..., 1:, :] - x[..., :-1, :]).square().mean(dim=(2, 3))
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3)), grad], 1)


def write_snapshots(data: Path, run: Path, perturbations: tuple[float, ...] = (0.0,)) -> list[Path]:
    """network-snapshot files of the tiny config, one per entry: G_ema's weights moved by that much."""
    cfg = tiny_config(data, run)
    trainer = Trainer(cfg, torch.device("cpu"))
    run.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, shift in enumerate(perturbations):
        with torch.no_grad():
            for p in trainer.G_ema.parameters():
                p.add_(shift * torch.randn_like(p))
        state = {"trainer": trainer.state_dict(), "config": cfg.to_dict(), "step": i * 10}
        paths.append(run / checkpoint.snapshot_name(i * 10 * cfg.batch))
        checkpoint.save(paths[-1], checkpoint.snapshot_state(state))
    return paths
