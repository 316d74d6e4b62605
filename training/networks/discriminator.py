"""StyleGAN2-style residual discriminator at p x p, optionally conditioned on the patch scale.

Scale conditioning is a projection (Miyato & Koyama): the score gains the inner product of the
final features with an embedding of log(S/R), so D can hold patches at each scale to that
scale's statistics without a separate head per scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .filters import blur4
from .layers import Conv2d, FullyConnected, ScaleEmbedding


@dataclass(frozen=True)
class DiscriminatorConfig:
    resolution: int = 256  # p: the side of every image D sees (global views are R = p)
    channel_base: int = 16384
    channel_max: int = 512
    mbstd_group: int = 4
    scale_cond: bool = True
    scale_dim: int = 64
    base_resolution: int = 256  # R, for log(S/R)
    img_channels: int = 3

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    def architecture(self) -> dict:
        return {k: getattr(self, k) for k in ("resolution", "channel_base", "channel_max", "mbstd_group",
                                                "scale_cond", "scale_dim")}


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0 = Conv2d(cin, cin, 3, activation=True)
        self.conv1 = Conv2d(cin, cout, 3, activation=True)
        self.skip = Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(blur4(self.conv0(x)))
        return (self.skip(blur4(x)) + y) / math.sqrt(2)  # keep the variance of the sum


def minibatch_std(x: torch.Tensor, group: int) -> torch.Tensor:
    """Append the std over groups of samples: lets D see a collapse in diversity."""
    b, c, h, w = x.shape
    g = math.gcd(group, b)
    # Groups of consecutive samples: a global batch split across ranks keeps the same groups.
    y = x.float().view(b // g, g, c, h, w)
    y = (y.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # b/g
    y = y.view(b // g, 1, 1, 1, 1).expand(-1, g, 1, h, w).reshape(b, 1, h, w)
    return torch.cat([x, y.to(x.dtype)], dim=1)


class Discriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        res = cfg.resolution
        if res < 4 or res & (res - 1):
            raise ValueError(f"discriminator resolution must be a power of two >= 4, got {res}")
        self.from_rgb = Conv2d(cfg.img_channels, cfg.channels(res), 1, activation=True)
        blocks = []
        while res > 4:
            blocks.append(ResidualBlock(cfg.channels(res), cfg.channels(res // 2)))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        c = cfg.channels(4)
        self.conv = Conv2d(c + 1, c, 3, activation=True)
        self.fc = FullyConnected(c * 16, c, activation=True)
        self.out = FullyConnected(c, 1)
        if cfg.scale_cond:
            self.embed = ScaleEmbedding(cfg.base_resolution, cfg.scale_dim)
            self.project = FullyConnected(c, cfg.scale_dim)
        else:
            self.embed = self.project = None

    def forward(self, img: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.from_rgb(img))
        x = self.conv(minibatch_std(x, self.cfg.mbstd_group))
        h = self.fc(x.flatten(1))
        score = self.out(h).squeeze(1)
        if self.embed is not None:
            cmap = self.embed(scale)
            score = score + (self.project(h) * cmap).sum(1) / math.sqrt(cmap.shape[1])
        return score
