"""The layer plan of a StyleGAN3-T synthesis network, from the StyleGAN3 paper's published design.

Karras et al. (2021), section 3 and appendix F, fix every layer of the alias-free generator from
a handful of numbers:

- N layers after the Fourier input, the last `critical` of them critically sampled at the
  output resolution; then a 1x1 toRGB layer.
- The cutoff f_c grows geometrically from `first_cutoff` (2 cycles per image) to half the
  output resolution, reached at the first critically sampled layer.
- The stopband f_t grows geometrically from 2**2.1 to f_c * 2**0.3 over the same layers.
- A layer's sampling rate is the smallest power of two at least 2 f_t, capped at the output
  resolution; the filter's transition half-width is max(f_t, rate / 2) - f_c.
- Channels: channel_base / 2 / f_c, capped at channel_max (toRGB has 3).
- Each nonlinearity is applied at twice the larger of its input and output rates.

Everything here is numbers: which layer runs at which rate, with which filters, and how many
samples each grid needs so that a patch of n output pixels is computed with no padding at all
(`grid_sizes`). The layers themselves are in generator.py, the filters in resample.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class LayerSpec:
    index: int
    in_channels: int
    out_channels: int
    in_rate: int  # samples per image width (at the base resolution R)
    out_rate: int
    tmp_rate: int  # where the nonlinearity runs
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    torgb: bool

    @property
    def up(self) -> int:
        return self.tmp_rate // self.in_rate

    @property
    def down(self) -> int:
        return self.tmp_rate // self.out_rate


@dataclass(frozen=True)
class SynthesisPlan:
    resolution: int
    input_channels: int
    input_rate: int
    input_cutoff: float
    layers: tuple[LayerSpec, ...]

    @property
    def coarsest_spacing(self) -> int:
        """Output pixels between two input samples: patch offsets that are whole multiples of it
        see exactly the same sample grids, so such patches are exact crops of one render."""
        return self.resolution // self.input_rate


def plan_synthesis(resolution: int, num_layers: int = 14, critical: int = 2, first_cutoff: float = 2.0,
                   first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3,
                   channel_base: int = 32768, channel_max: int = 512, img_channels: int = 3,
                   lrelu_upsampling: int = 2) -> SynthesisPlan:
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"the synthesis resolution must be a power of two >= 8, got {resolution}")
    if not 1 <= critical < num_layers:
        raise ValueError("critical layers must be at least 1 and fewer than the layers")
    last_cutoff = resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    # Level 0 is the Fourier input; level i the output of layer i; level N + 1 is the image.
    levels = np.arange(num_layers + 1)
    t = np.minimum(levels / (num_layers - critical), 1.0)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** t
    stopbands = first_stopband * (last_stopband / first_stopband) ** t
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution)))).astype(int)
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    channels = np.rint(np.minimum(channel_base / 2 / cutoffs, channel_max)).astype(int)
    layers = []
    for i in range(num_layers + 1):  # layers 0..N-1 convolve, layer N is toRGB
        a, b = max(i - 1, 0), min(i, num_layers)
        torgb = i == num_layers
        tmp = max(rates[a], rates[b]) * (1 if torgb else lrelu_upsampling)
        layers.append(LayerSpec(
            index=i, in_channels=int(channels[a]), out_channels=img_channels if torgb else int(channels[b]),
            in_rate=int(rates[a]), out_rate=int(rates[b]), tmp_rate=int(tmp),
            in_cutoff=float(cutoffs[a]), out_cutoff=float(cutoffs[b]),
            in_half_width=float(half_widths[a]), out_half_width=float(half_widths[b]), torgb=torgb))
    return SynthesisPlan(resolution, int(channels[0]), int(rates[0]), float(cutoffs[0]), tuple(layers))


# Taps per filter: filter_size samples of the slower rate on each side of the nonlinearity.
FILTER_SIZE = 6
CONV_KERNEL = 3


def taps(factor: int) -> int:
    return FILTER_SIZE * factor if factor > 1 else 1


def _even_at_least(x: float) -> int:
    n = math.ceil(x)
    return n + (n % 2)


GridMode = Literal["exact", "stylegan3"]
STYLEGAN3_MARGIN = 10  # samples per side of every grid before the critically sampled layers


@dataclass(frozen=True)
class LayerSides:
    """Sides of one layer's grids for an n x n output: its input (after centred padding or
    cropping of the previous layer's output), after the valid 3x3 convolution, at the
    nonlinearity's rate, and its output."""

    input: int
    conv: int
    fine: int
    output: int


def _back(layer: LayerSpec, out: int) -> LayerSides:
    """The smallest grids from which `out` valid output samples follow: a valid down-filter of 6d
    taps needs d * (out + 5) fine samples; a valid up-filter of 6u taps turns c samples into
    u * (c - 5); the 3x3 convolution eats one sample per side."""
    if layer.torgb:
        return LayerSides(out, out, out, out)
    d, u = layer.down, layer.up
    fine = d * (out + 5) if d > 1 else out
    conv = _even_at_least(fine / u + 5) if u > 1 else fine
    return LayerSides(conv + CONV_KERNEL - 1, conv, fine, out)


def grid_sizes(plan: SynthesisPlan, n: int, mode: GridMode = "exact") -> tuple[int, list[LayerSides]]:
    """(side of the Fourier input grid, each layer's sides) for an n x n output.

    Every grid is centred on the patch and has an even side, so the grids of all rates stay
    aligned (an even-tap filter's centre falls half a sample off its input grid, exactly where the
    next rate's samples lie).

    - exact: walk back from the output so that no output pixel depends on a sample outside a
      grid. No padding ever reaches the image: a patch is exactly the matching crop of a larger
      render whenever their offset is a multiple of the coarsest spacing, and tiles join exactly.
    - stylegan3: StyleGAN3's grids, rate + 2 x 10 samples before the critically sampled layers
      and exactly n after; each layer pads its input with zeros as far as its filters need.
      Cheaper (about 2/3 of the work at 256 px), but pixels near a patch's border feel the padding.
    """
    if n % (2 * plan.coarsest_spacing):
        raise ValueError(f"the patch side must be a multiple of {2 * plan.coarsest_spacing}, got {n}")
    k = n / plan.resolution
    if mode == "stylegan3":
        def prescribed(rate: int, critical: bool) -> int:
            return int(rate * k) + (0 if critical else 2 * STYLEGAN3_MARGIN)
        # StyleGAN3 keeps no margin on its last two grids: the last layer's output and the image.
        last = len(plan.layers) - 2
        sides = [_back(layer, prescribed(layer.out_rate, i >= last)) for i, layer in enumerate(plan.layers)]
        return prescribed(plan.input_rate, False), sides
    if mode != "exact":
        raise ValueError(f"grid mode must be 'exact' or 'stylegan3', got {mode!r}")
    sides: list[LayerSides] = []
    out = n
    for layer in reversed(plan.layers):
        sides.append(_back(layer, out))
        out = sides[-1].input
    return out, sides[::-1]


def synthesis_params(plan: SynthesisPlan, w_dim: int, conv_kernel: int = CONV_KERNEL,
                     input_affine: bool = True) -> int:
    """Trainable parameters of StyleGAN3-T's synthesis network by the published layer formula:
    per layer a style affine (w_dim + 1) x in, a k x k weight and a bias; the Fourier input's
    channel mixing (c x c) and, in StyleGAN3, its affine from w to a rotation and translation
    (4 outputs). toRGB is 1x1."""
    total = plan.input_channels ** 2 + (4 * (w_dim + 1) if input_affine else 0)
    for layer in plan.layers:
        k = 1 if layer.torgb else conv_kernel
        total += (w_dim + 1) * layer.in_channels + layer.out_channels * layer.in_channels * k * k + layer.out_channels
    return total


def synthesis_flops(plan: SynthesisPlan, n: int, mode: GridMode = "exact") -> float:
    """Multiply-adds x 2 of one n x n forward pass: the convolutions and the resampling filters,
    counted as polyphase filters (FILTER_SIZE taps per output sample and axis for both)."""
    total = 0.0
    previous, sides = grid_sizes(plan, n, mode)
    for layer, s in zip(plan.layers, sides):
        k = 1 if layer.torgb else CONV_KERNEL
        conv = min(s.input, previous + k - 1) - (k - 1)  # generator.py: a full convolution at most
        total += 2 * conv ** 2 * layer.in_channels * layer.out_channels * k * k
        previous = s.output
        if not layer.torgb:
            c = layer.out_channels
            total += 2 * c * FILTER_SIZE * (s.fine * s.conv + s.fine ** 2)  # up: columns, then rows
            total += 2 * c * FILTER_SIZE * layer.down * (s.output * s.fine + s.output ** 2)  # down
    return total
