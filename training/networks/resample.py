"""Windowed-sinc filters and the resampling between a synthesis network's sampling rates.

Every grid is centred on the patch and has an even side (synthesis_plan.grid_sizes), and every
filter has an even number of taps, so a filter's centre falls half a fine sample off its input
grid: exactly where the samples of the other rate lie. With that convention, upsampling by u
and downsampling by d are plain matrices between two centred grids, built here from sample
positions, once per (side, filter), and applied separably: rows, then columns. Only the rows
whose filter lies wholly inside the input are ever asked for ("valid"), so no padding reaches
a kept sample. The matrices are applied either as two small dense matmuls or as polyphase
depthwise convolutions (STRATEGY below).
"""

from __future__ import annotations

import numpy as np
import scipy.signal
import torch
import torch.nn.functional as F


def lowpass(numtaps: int, cutoff: float, half_width: float, rate: float) -> np.ndarray:
    """Kaiser-windowed sinc of `numtaps` taps (1: no filter), cutoff and transition half-width in
    cycles per unit, at `rate` samples per unit; unit DC gain. The window's beta follows Kaiser's
    formula for the transition width, as StyleGAN3 designs its filters."""
    if numtaps == 1:
        return np.ones(1)
    return scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=half_width * 2, fs=rate)


def _positions(side: int) -> np.ndarray:
    """Sample positions of a centred grid, in its own samples: ..., -1.5, -0.5, 0.5, 1.5, ..."""
    return np.arange(side) - (side - 1) / 2


def up_matrix(h: np.ndarray, side_in: int, side_out: int, factor: int) -> np.ndarray:
    """(side_out x side_in): zero-insertion by `factor` then the filter h (gain `factor`), onto the
    centred fine grid of side_out samples. Raises when a kept sample's filter leaves the input."""
    return _matrix(h * factor, fine_in=_positions(side_in) * factor, fine_out=_positions(side_out), side_in=side_in,
                   step_in=factor)


def down_matrix(h: np.ndarray, side_in: int, side_out: int, factor: int) -> np.ndarray:
    """(side_out x side_in): the filter h on the fine grid, then every `factor`-th sample, onto the
    centred coarse grid of side_out samples."""
    return _matrix(h, fine_in=_positions(side_in), fine_out=_positions(side_out) * factor, side_in=side_in, step_in=1)


def _matrix(h: np.ndarray, fine_in: np.ndarray, fine_out: np.ndarray, side_in: int, step_in: int) -> np.ndarray:
    """out[i] = sum_j h[fine_out[i] - fine_in[j] + centre] in[j], positions in fine samples."""
    k = len(h)
    centre = (k - 1) / 2
    offset = fine_out[:, None] - fine_in[None, :] + centre
    index = np.rint(offset).astype(int)
    if not np.allclose(offset, index):
        raise ValueError("grids are not aligned: sides must be even and filters have an even tap count")
    inside = (index >= 0) & (index < k)
    # Valid: every tap of a kept sample's filter lands on an input sample (or on an inserted zero
    # between two of them); none falls past the grid's ends.
    lo = fine_out - centre
    hi = fine_out + centre
    if k > 1 and (lo.min() < fine_in[0] - (step_in - 1) - 1e-9 or hi.max() > fine_in[-1] + (step_in - 1) + 1e-9):
        raise ValueError(f"a {side_in}-sample grid is too small for {len(fine_out)} valid outputs")
    return np.where(inside, h[np.clip(index, 0, k - 1)], 0.0)


# Two ways to apply the same matrices, equal to float rounding (tests/training/test_synthesis.py):
# dense matmuls, which multiply many zeros, and polyphase depthwise convolutions, which do 4 to
# 10 times fewer FLOPs at the sides of a 256 px network. On this project's 2-core CPU the dense
# form was faster at every side (40 to 276 samples: 1.5 to 4x); a GPU's depthwise convolutions
# are bandwidth-bound and cheap, so "auto" uses polyphase there beyond DENSE_LIMIT.
# bench/gpu_check.py --resample compares them on a GPU.
STRATEGY = "auto"  # "auto", "dense" or "polyphase"
DENSE_LIMIT = 64


def _polyphase(x: torch.Tensor, side_out: int) -> bool:
    if STRATEGY != "auto":
        return STRATEGY == "polyphase"
    return x.device.type == "cuda" and max(x.shape[-1], side_out) > DENSE_LIMIT


class Resampler(torch.nn.Module):
    """One separable resampling step (up or down by an integer factor) between centred grids,
    for any side; dense matrices and polyphase weights are built on first use and kept."""

    def __init__(self, h: np.ndarray, factor: int, up: bool):
        super().__init__()
        self.h, self.factor, self.up = h, factor, up
        self._cache: dict[tuple, torch.Tensor] = {}

    @property
    def identity(self) -> bool:
        return self.factor == 1 and len(self.h) == 1

    def matrix(self, side_in: int, side_out: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        key = (side_in, side_out, dtype, device)
        if key not in self._cache:
            build = up_matrix if self.up else down_matrix
            m = build(self.h, side_in, side_out, self.factor)
            self._cache[key] = torch.from_numpy(m).to(device=device, dtype=dtype)
        return self._cache[key]

    def kernel(self, channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The polyphase form's depthwise weight, built once per (channels, dtype, device): up by u,
        u phases of len(h) / u taps, u * h[u t + r] reversed (_up_last); down, h reversed."""
        key = ("kernel", channels, dtype, device)
        if key not in self._cache:
            u, per_phase = self.factor, len(self.h) // self.factor
            taps = u * self.h.reshape(per_phase, u).T[:, ::-1] if self.up else self.h[None, ::-1]
            weight = torch.from_numpy(taps.copy()).repeat(channels, 1)
            self._cache[key] = weight.view(-1, 1, 1, taps.shape[1]).to(device=device, dtype=dtype)
        return self._cache[key]

    def forward(self, x: torch.Tensor, side_out: int) -> torch.Tensor:
        if self.identity:
            return crop(x, side_out)
        if _polyphase(x, side_out):
            along = _up_last if self.up else _down_last
            weight = self.kernel(x.shape[1], x.dtype, x.device)
            x = along(x, weight, len(self.h), self.factor, side_out)  # rows
            return along(x.transpose(-1, -2), weight, len(self.h), self.factor, side_out).transpose(-1, -2)
        mh = self.matrix(x.shape[-2], side_out, x.dtype, x.device)
        mw = mh if x.shape[-1] == x.shape[-2] else self.matrix(x.shape[-1], side_out, x.dtype, x.device)
        return mh @ x @ mw.T


def _depthwise(x: torch.Tensor, weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Each channel correlated with its own rows of `weight` (Resampler.kernel), along the last axis."""
    return F.conv2d(x, weight, stride=(1, stride), groups=x.shape[1])


def _up_last(x: torch.Tensor, weight: torch.Tensor, k: int, u: int, side_out: int) -> torch.Tensor:
    """up_matrix along the last axis, as u polyphase filters of k / u taps, interleaved.

    Output i is u * sum_t h[u t + r] x[q - t] with m = u q + r the position of i on the filter
    (see _matrix): one correlation per phase r over a window of x, then the phases interleaved.
    """
    n = x.shape[-1]
    per_phase = k // u
    m0 = (k - side_out + u * (n - 1)) // 2
    q0, r0 = divmod(m0, u)
    start = q0 - (per_phase - 1)
    count = -(-(r0 + side_out) // u)
    if start < 0 or start + count + per_phase - 1 > n:
        raise ValueError(f"a {n}-sample grid is too small for {side_out} valid outputs")
    y = _depthwise(x[..., start:start + count + per_phase - 1], weight)  # b, c*u, h, count
    b, cu, rows, _ = y.shape
    y = y.view(b, cu // u, u, rows, count).permute(0, 1, 3, 4, 2).reshape(b, cu // u, rows, count * u)
    return y[..., r0:r0 + side_out]


def _down_last(x: torch.Tensor, weight: torch.Tensor, k: int, d: int, side_out: int) -> torch.Tensor:
    """down_matrix along the last axis: a strided correlation over the centred window."""
    n = x.shape[-1]
    start = (n - k - d * (side_out - 1)) // 2
    if start < 0:
        raise ValueError(f"a {n}-sample grid is too small for {side_out} valid outputs")
    return _depthwise(x[..., start:start + d * (side_out - 1) + k], weight, stride=d)


def crop(x: torch.Tensor, side: int) -> torch.Tensor:
    """The centred side x side part of x (sides differ by an even number)."""
    dh, dw = x.shape[-2] - side, x.shape[-1] - side
    if dh < 0 or dw < 0 or dh % 2 or dw % 2:
        raise ValueError(f"cannot centre-crop {tuple(x.shape[-2:])} to {side}")
    return x[..., dh // 2:x.shape[-2] - dh // 2, dw // 2:x.shape[-1] - dw // 2]


def pad_or_crop(x: torch.Tensor, side: int) -> torch.Tensor:
    """Centred zero padding or cropping to side x side: StyleGAN3's fixed grids pad; exact grids
    never need to."""
    d = side - x.shape[-1]
    if d <= 0:
        return crop(x, side)
    if d % 2:
        raise ValueError(f"cannot centre-pad {x.shape[-1]} to {side}")
    return torch.nn.functional.pad(x, (d // 2,) * 4)
