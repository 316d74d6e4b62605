"""The any-resolution generator: a StyleGAN3-T-style synthesis network driven by patch transforms.

The input is a bank of Fourier features defined on the *canvas* (DESIGN.md 3): feature k is
sin(2 pi (f_k . c + phi_k)) at canvas point c. A patch with transform T samples them at its own
pixel centres mapped through T, plus a margin of M pixels on every side. Every later layer is a
valid (unpadded) convolution or a filtered nonlinearity on grids tied to those pixel centres
(filters.py), each eating a fixed number of pixels per side, so exactly the p x p pixels of the
patch survive and each depends only on features near its own canvas position. Hence one network
renders the global canvas (T = identity, p = R), any window at any scale, and tiles that join
without seams: tiles at the same S are bit-for-bit crops of one large render (float rounding
aside).

Detail grows with S the way a band limit requires: a feature's frequency in cycles per pixel is
|f|/S, and features are faded out as that approaches the pixel Nyquist (as StyleGAN3 fades them
by the layer's sampling rate). Frequencies span several octaves above R's band, so zooming in
turns on finer features instead of showing a blurred global image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .filters import FilteredLeakyReLU
from .layers import FullyConnected, ScaleEmbedding, normalize_2nd_moment
from .render import pixel_grid


@dataclass(frozen=True)
class GeneratorConfig:
    resolution: int = 256  # R: pixels across the canvas in the global view
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 2
    channels: tuple[int, ...] = (512,) * 10  # one synthesis layer per entry
    fourier_features: int = 512
    octaves: float = 3.0  # frequencies reach R/2 * 2**octaves cycles per canvas: zoom up to 2**octaves
    filter_half: int = 3  # low-pass taps 2*half+1 in the filtered nonlinearity
    scale_cond: bool = True
    scale_dim: int = 64
    img_channels: int = 3

    @property
    def num_ws(self) -> int:
        return len(self.channels) + 1

    @property
    def margin(self) -> int:
        """Pixels per side the layers eat: 1 for each 3x3 conv, filter_half for each nonlinearity."""
        return len(self.channels) * (1 + self.filter_half)

    def architecture(self) -> dict:
        """What a checkpoint must match to be loaded into this network."""
        return {k: getattr(self, k) for k in ("resolution", "z_dim", "w_dim", "mapping_layers", "channels",
                                                "fourier_features", "filter_half", "scale_cond", "scale_dim")}


class MappingNetwork(nn.Module):
    def __init__(self, cfg: GeneratorConfig, lr_mul: float = 0.01, w_avg_beta: float = 0.998):
        super().__init__()
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.layers = nn.Sequential(*[FullyConnected(a, b, lr_mul=lr_mul, activation=True)
                                      for a, b in zip(dims[:-1], dims[1:])])
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        self.num_ws, self.w_avg_beta = cfg.num_ws, w_avg_beta

    def forward(self, z: torch.Tensor, psi: float = 1.0, update_avg: bool = False) -> torch.Tensor:
        w = self.layers(normalize_2nd_moment(z))
        # w_avg is an fp32 buffer; under bf16 autocast w is bf16, and lerp takes one dtype.
        if update_avg:
            self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if psi != 1:
            w = self.w_avg.lerp(w.float(), psi)
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)


class FourierInput(nn.Module):
    """Fourier features of canvas coordinates, sampled at a patch's pixel centres through T."""

    def __init__(self, cfg: GeneratorConfig, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n = cfg.fourier_features
        # Radii log-uniform from 1/2 cycle per canvas to R/2 * 2**octaves: every octave of zoom
        # gets its share of features. Directions uniform; the bank is fixed, not learned.
        top = math.log(cfg.resolution / 2 * 2.0 ** cfg.octaves)
        radius = torch.exp(torch.rand(n, generator=g) * (top - math.log(0.5)) + math.log(0.5))
        angle = torch.rand(n, generator=g) * 2 * math.pi
        self.register_buffer("freqs", torch.stack([radius * angle.cos(), radius * angle.sin()], 1))
        self.register_buffer("phases", torch.rand(n, generator=g) - 0.5)
        self.weight = nn.Parameter(torch.randn(cfg.channels[0], n))

    def grid(self, transform: torch.Tensor, size: int, margin: int) -> torch.Tensor:
        """Canvas coordinates (b, h, w, 2) of pixel centres i in [-margin, size + margin)."""
        patch = pixel_grid(size, transform.device, margin)
        return torch.einsum("bij,hwj->bhwi", transform[:, :2].float(), patch)

    def forward(self, transform: torch.Tensor, scale: torch.Tensor, size: int, margin: int) -> torch.Tensor:
        # Coordinates and phases always in fp32, autocast or not: bf16's 8-bit mantissa would put
        # a canvas coordinate pixels off deep in a zoom and turn the high octaves into noise,
        # and training would see other inputs than inference.
        with torch.autocast(transform.device.type, enabled=False):
            coords = self.grid(transform, size, margin)
            x = torch.sin(2 * math.pi * (coords @ self.freqs.T + self.phases))  # b h w n
            # Cycles per pixel at this scale; fade from a quarter to half a cycle (Nyquist).
            per_pixel = self.freqs.norm(dim=1) / scale.float().unsqueeze(1)  # b x n
            amplitude = ((0.5 - per_pixel) / 0.25).clamp(0, 1)
            x = x * amplitude[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.weight.shape[1])).T  # b h w c
        return x.permute(0, 3, 1, 2).contiguous()


class ModulatedLayer(nn.Module):
    """Style-modulated 3x3 valid convolution, demodulated, then the filtered leaky ReLU."""

    def __init__(self, cin: int, cout: int, cfg: GeneratorConfig, kernel: int = 3, nonlinear: bool = True,
                 demodulate: bool = True):
        super().__init__()
        self.affine = FullyConnected(cfg.w_dim, cin, bias_init=1.0)
        # Zero-initialised: a stage-1 network starts stage 2 rendering exactly as before, and the
        # scale's influence is learned from there.
        self.scale_affine = FullyConnected(cfg.scale_dim, cin, zero=True) if cfg.scale_cond else None
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.act = FilteredLeakyReLU(cfg.filter_half) if nonlinear else None
        self.demodulate = demodulate
        self.weight_gain = 1 / math.sqrt(cin * kernel * kernel)

    def forward(self, x: torch.Tensor, w: torch.Tensor, embed: torch.Tensor | None) -> torch.Tensor:
        styles = self.affine(w)
        if self.scale_affine is not None and embed is not None:
            styles = styles + self.scale_affine(embed)
        weight = self.weight * self.weight_gain
        # Modulating activations instead of weights: one shared convolution for the whole batch.
        x = F.conv2d(x * styles[:, :, None, None], weight)
        if self.demodulate:
            d = (weight.square().sum(dim=(2, 3)) @ styles.square().T.float()).T  # b x cout
            x = x * (d + 1e-8).rsqrt()[:, :, None, None].to(x.dtype)
        else:
            x = x / math.sqrt(weight.shape[1])
        x = x + self.bias[None, :, None, None]
        return self.act(x) if self.act is not None else x


class Generator(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.mapping = MappingNetwork(cfg)
        self.embed = ScaleEmbedding(cfg.resolution, cfg.scale_dim) if cfg.scale_cond else None
        self.input = FourierInput(cfg)
        chans = cfg.channels
        self.layers = nn.ModuleList(ModulatedLayer(a, b, cfg) for a, b in zip(chans, chans[1:] + chans[-1:]))
        self.to_rgb = ModulatedLayer(chans[-1], cfg.img_channels, cfg, kernel=1, nonlinear=False,
                                     demodulate=False)

    def synthesis(self, ws: torch.Tensor, transform: torch.Tensor, scale: torch.Tensor,
                  size: int | None = None) -> torch.Tensor:
        size = size or self.cfg.resolution
        embed = self.embed(scale) if self.embed is not None else None
        x = self.input(transform, scale, size, self.cfg.margin)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], embed)
        assert x.shape[-1] == size, (x.shape, size)
        return self.to_rgb(x, ws[:, -1], embed)

    def forward(self, z: torch.Tensor, transform: torch.Tensor, scale: torch.Tensor, size: int | None = None,
                psi: float = 1.0, update_avg: bool = False) -> torch.Tensor:
        return self.synthesis(self.mapping(z, psi, update_avg), transform, scale, size)

