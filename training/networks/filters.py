"""Fixed filters the losses and the discriminator share: the teacher's windowed-sinc downscale
of a patch into its frame, and the discriminator's [1, 3, 3, 1] downsampling. The generator's
windowed-sinc resampling lives in resample.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LANCZOS_LOBES = 3


def _separable(x: torch.Tensor, taps: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Depthwise valid convolution with the same 1-D filter along both axes."""
    c, k = x.shape[1], taps.numel()
    t = taps.to(x.dtype)
    x = F.conv2d(x, t.view(1, 1, 1, k).expand(c, 1, 1, k), stride=(1, stride), groups=c)
    return F.conv2d(x, t.view(1, 1, k, 1).expand(c, 1, k, 1), stride=(stride, 1), groups=c)


def lanczos(x: torch.Tensor, lobes: int = LANCZOS_LOBES) -> torch.Tensor:
    """The Lanczos kernel sinc(x) sinc(x / lobes) on |x| < lobes, zero beyond."""
    return torch.where(x.abs() < lobes, torch.sinc(x) * torch.sinc(x / lobes), torch.zeros_like(x))


def lanczos_rows(centres: torch.Tensor, width: torch.Tensor, side: int) -> torch.Tensor:
    """Per-sample resampling matrices (b x n x side) from a row of `side` pixels to n outputs.

    Output i is the Lanczos-3 low-pass of the row, stretched to `width` input pixels per output
    pixel (width >= 1: a downscale, cut off at the output's Nyquist), evaluated at the continuous
    position centres[b, i] (input pixel j has its centre at j + 0.5). Taps that fall off the row
    are dropped and the rest renormalised to unit gain, as Pillow does at an image's edge: near an
    end this passes less of a fine texture than mirroring the row would (measured on stripes at
    1.5x the output's Nyquist: 1.5% against 2.7% of their amplitude, for a window 8 outputs wide).
    An output whose filter meets no pixel is zero.
    """
    width = width.clamp(min=1.0).view(-1, 1, 1)
    j = torch.arange(side, device=centres.device, dtype=centres.dtype) + 0.5
    weights = lanczos((j - centres.unsqueeze(-1)) / width)
    total = weights.sum(-1, keepdim=True)
    return torch.where(total.abs() > 1e-6, weights / total, torch.zeros_like(weights))


def blur4(x: torch.Tensor) -> torch.Tensor:
    """[1, 3, 3, 1] blur with 'same'-size padding then stride 2: the discriminator's downsample."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], device=x.device, dtype=x.dtype) / 8
    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    return _separable(x, taps, stride=2)
