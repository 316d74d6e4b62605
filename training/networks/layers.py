"""Building blocks both networks share: equalised-learning-rate layers and the scale embedding.

Equalised learning rate (StyleGAN): weights are stored at unit variance and scaled at run time
by 1/sqrt(fan_in), so Adam's per-parameter step sizes mean the same thing in every layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FullyConnected(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False, zero: bool = False):
        super().__init__()
        init = torch.zeros(fan_out, fan_in) if zero else torch.randn(fan_out, fan_in) / lr_mul
        self.weight = nn.Parameter(init)
        self.bias = nn.Parameter(torch.full((fan_out,), float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(fan_in)
        self.lr_mul, self.activation = lr_mul, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.activation else x


class Conv2d(nn.Module):
    """Equalised convolution with 'same' padding (the discriminator's; the generator's are valid)."""

    def __init__(self, cin: int, cout: int, kernel: int, bias: bool = True, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.weight_gain = 1 / math.sqrt(cin * kernel * kernel)
        self.activation, self.padding = activation, kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.activation else x


def log_scale(scale: torch.Tensor, resolution: int) -> torch.Tensor:
    """log(S/R): 0 for the global view, log 2 per octave of zoom."""
    return torch.log(scale.to(torch.float32) / resolution)


class ScaleEmbedding(nn.Module):
    """log(S/R) -> a vector, by Fourier features of the scalar and a small MLP.

    The original code passed S through a mapping network whose input normalisation divides by
    the vector's RMS, which maps any positive scalar to 1: the branch carried no information.
    Here nothing normalises the scalar; the raw value and sines and cosines at octave-spaced
    frequencies keep scales distinguishable whether they are close or far apart.
    """

    def __init__(self, resolution: int, dim: int, frequencies: int = 4):
        super().__init__()
        self.resolution = resolution
        self.register_buffer("omega", 2.0 ** (torch.arange(frequencies, dtype=torch.float32) - 1),
                             persistent=False)
        features = 1 + 2 * frequencies
        self.mlp = nn.Sequential(FullyConnected(features, dim, activation=True),
                                 FullyConnected(dim, dim, activation=True))

    def forward(self, scale: torch.Tensor) -> torch.Tensor:
        t = log_scale(scale, self.resolution).unsqueeze(-1)
        angles = t * self.omega
        return self.mlp(torch.cat([t, torch.sin(angles), torch.cos(angles)], dim=-1))


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()
