"""Low-pass filters and the filtered nonlinearity, on grids tied to pixel centres.

Every operation here is a *valid* (unpadded) convolution on a grid whose samples sit at fixed
positions relative to the input's pixel centres, so shifting the input by whole pixels shifts
the output by whole pixels, exactly. That is what lets the generator render tiles that join
without seams: no zero padding ever reaches a pixel that survives the final crop.

The nonlinearity follows StyleGAN3's recipe in simplified form: upsample x2 with a
Kaiser-windowed sinc, apply leaky ReLU there (its harmonics then fall mostly above the original
Nyquist), low-pass with the same kind of filter and keep every second sample.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def kaiser_lowpass(half: int, cutoff: float, beta: float = 4.0) -> np.ndarray:
    """Symmetric low-pass of 2*half+1 taps, cutoff in cycles per sample, DC gain 1.

    At the short lengths used here Kaiser's design formulas ask for almost no window (a bare
    truncated sinc rings); beta = 4 trades some transition width for far smaller side lobes.
    """
    n = np.arange(2 * half + 1) - half
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(2 * half + 1, beta)
    return h / h.sum()


def _separable(x: torch.Tensor, taps: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Depthwise valid convolution with the same 1-D filter along both axes."""
    c, k = x.shape[1], taps.numel()
    t = taps.to(x.dtype)
    x = F.conv2d(x, t.view(1, 1, 1, k).expand(c, 1, 1, k), stride=(1, stride), groups=c)
    return F.conv2d(x, t.view(1, 1, k, 1).expand(c, 1, k, 1), stride=(stride, 1), groups=c)


def upsample2(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Zero-insert to samples at half-pixel spacing, then filter (gain 2 per axis keeps DC).

    Output sample j sits at input position (j + half) / 2: it loses `half` fine samples per side.
    """
    b, c, h, w = x.shape
    z = x.new_zeros(b, c, 2 * h - 1, 2 * w - 1)
    z[:, :, ::2, ::2] = x
    return _separable(z, taps * 2)


def downsample2(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Filter and keep every second sample, starting at the first fully covered one."""
    return _separable(x, taps, stride=2)


def up_matrix(taps: torch.Tensor, n: int) -> torch.Tensor:
    """upsample2 along one axis as an (out x n) matrix: out[j] = sum_i 2 h[2i - j] x[i]."""
    k = taps.numel()
    j = torch.arange(2 * n - k).unsqueeze(1)
    t = 2 * torch.arange(n).unsqueeze(0) - j
    return torch.where((t >= 0) & (t < k), 2 * taps[t.clamp(0, k - 1)], torch.zeros(()))


def down_matrix(taps: torch.Tensor, n: int) -> torch.Tensor:
    """downsample2 along one axis as an (out x n) matrix: out[j] = sum_m h[m - 2j] x[m]."""
    k = taps.numel()
    j = torch.arange((n - k) // 2 + 1).unsqueeze(1)
    t = torch.arange(n).unsqueeze(0) - 2 * j
    return torch.where((t >= 0) & (t < k), taps[t.clamp(0, k - 1)], torch.zeros(()))


# Up to this side the filters run as dense matmuls (fast on small maps despite the wasted
# zeros); beyond it as depthwise convolutions, whose work per sample does not grow with the side.
DENSE_LIMIT = 96


class FilteredLeakyReLU(torch.nn.Module):
    """up x2 -> leaky ReLU -> low-pass -> down x2; loses `shrink` input pixels on each side."""

    def __init__(self, half: int = 3, slope: float = 0.2, gain: float = math.sqrt(2)):
        super().__init__()
        # The same tap count up and down keeps up + down shrink an even number of fine samples, so
        # the kept samples land back on integer pixel positions.
        taps = torch.tensor(kaiser_lowpass(half, cutoff=0.25), dtype=torch.float32)
        self.register_buffer("taps", taps, persistent=False)
        self.slope, self.gain, self.shrink = slope, gain, half
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def matrices(self, n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (n, dtype, device)
        if key not in self._cache:
            # Filtering as two small matmuls per image: far faster than depthwise convolutions.
            taps = self.taps.cpu().double()
            up = up_matrix(taps, n)
            down = down_matrix(taps, up.shape[0])
            self._cache[key] = (up.to(device, dtype), down.to(device, dtype))
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if max(x.shape[-2:]) > DENSE_LIMIT:  # large maps: a dense matrix does O(n) work per sample
            x = upsample2(x, self.taps.to(x.dtype))
            x = F.leaky_relu(x, self.slope) * self.gain
            return downsample2(x, self.taps.to(x.dtype))
        up_h, down_h = self.matrices(x.shape[-2], x.dtype, x.device)
        up_w, down_w = self.matrices(x.shape[-1], x.dtype, x.device)
        x = up_h @ x @ up_w.T  # separable: columns, then rows
        x = F.leaky_relu(x, self.slope) * self.gain
        return down_h @ x @ down_w.T


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
