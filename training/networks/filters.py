"""Fixed filters the losses and the discriminator share: per-sample area averaging (the
teacher's antialiased downscale) and the discriminator's [1, 3, 3, 1] downsampling. The
generator's windowed-sinc resampling lives in resample.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _separable(x: torch.Tensor, taps: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Depthwise valid convolution with the same 1-D filter along both axes."""
    c, k = x.shape[1], taps.numel()
    t = taps.to(x.dtype)
    x = F.conv2d(x, t.view(1, 1, 1, k).expand(c, 1, 1, k), stride=(1, stride), groups=c)
    return F.conv2d(x, t.view(1, 1, k, 1).expand(c, 1, k, 1), stride=(stride, 1), groups=c)


def box_weights(width: torch.Tensor, radius: int) -> torch.Tensor:
    """Per-sample 1-D area filters of fractional width (in pixels), 2*radius+1 taps, sum 1.

    Tap n covers [n - 0.5, n + 0.5]; its weight is how much of that pixel a box of the given
    width centred on 0 overlaps: area averaging, the antialiasing a downscale by `width` needs.
    """
    n = torch.arange(-radius, radius + 1, dtype=width.dtype, device=width.device)
    half = (width.clamp(min=1.0) / 2).unsqueeze(-1)
    overlap = (torch.minimum(n + 0.5, half) - torch.maximum(n - 0.5, -half)).clamp(min=0)
    return overlap / overlap.sum(-1, keepdim=True)


def per_sample_blur(x: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Area-average each image of the batch over its own box width, same size out (edge padding).

    One grouped convolution for the whole batch: no per-sample Python loop.
    """
    b, c, h, w = x.shape
    radius = int(math.ceil(float(width.max()) / 2))
    if radius == 0:
        return x
    k = 2 * radius + 1
    taps = box_weights(width.to(x.dtype), radius)  # b x k
    taps = taps.repeat_interleave(c, dim=0)  # (b*c) x k
    y = F.pad(x.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, taps.view(b * c, 1, 1, k), groups=b * c)
    y = F.conv2d(y, taps.view(b * c, 1, k, 1), groups=b * c)
    return y.view(b, c, h, w)


def blur4(x: torch.Tensor) -> torch.Tensor:
    """[1, 3, 3, 1] blur with 'same'-size padding then stride 2: the discriminator's downsample."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], device=x.device, dtype=x.dtype) / 8
    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    return _separable(x, taps, stride=2)
