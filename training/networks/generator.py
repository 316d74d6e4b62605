"""The any-resolution generator: StyleGAN3-T's synthesis network, driven by the patch transform T.

The layers are StyleGAN3-T's (Karras et al. 2021), built from its published design in
synthesis_plan.py: a Fourier-feature input at 16 samples per image, fourteen modulated 3x3
layers whose sampling rates grow to the output's, each nonlinearity a leaky ReLU between a
windowed-sinc upsampling and downsampling (resample.py), each layer's input normalised by a
running average of its magnitude, and a 1x1 toRGB.

What makes it any-resolution (DESIGN.md 3) is where T enters: only at the input. The Fourier
features are functions of *canvas* coordinates; a patch evaluates them at its own input samples
mapped through T (their frequencies and phases transformed), so one set of layers renders the
global canvas (T = identity, n = R), any window at any scale and subpixel offset, and images of
any size n: every grid of every layer just spans n/R times more samples. With `grid="exact"`
no padding reaches an output pixel, so tiles whose offsets are multiples of the input spacing
(R/16 px) are exact crops of one render, and other offsets differ only by the network's own
aliasing. The scale S reaches the styles through a zero-initialised embedding of log(S/R).

A 360° model (`fov`, stage global-360) has the same layers; only its input differs. The canvas
is one frame of a panorama, `fov` degrees wide, so a full turn spans P = 360 / fov canvas widths,
and the horizontal coordinate is mapped onto a cylinder of circumference P (FourierInput): every
feature, and so every image, repeats exactly every P canvas widths, and the panorama's left and
right edges join.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from plumbing.errors import ConfigError

from .layers import FullyConnected, ScaleEmbedding, normalize_2nd_moment
from .render import sample_grid_positions
from .resample import Resampler, lowpass, pad_or_crop
from .synthesis_plan import LayerSides, LayerSpec, SynthesisPlan, grid_sizes, plan_synthesis, taps


@dataclass(frozen=True)
class GeneratorConfig:
    resolution: int = 256  # R: pixels across the canvas in the global view
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 2
    num_layers: int = 14  # StyleGAN3-T at 256 px; then toRGB
    critical_layers: int = 2  # the last layers, critically sampled at R
    channel_base: int = 32768  # StyleGAN3-T's; channels = min(channel_base / 2 / cutoff, channel_max)
    channel_max: int = 512
    first_cutoff: float = 2.0  # the input's band, cycles per image
    grid: Literal["exact", "stylegan3"] = "stylegan3"  # training grids (synthesis_plan.grid_sizes); images render exact
    magnitude_ema_beta: float = 0.999
    output_scale: float = 0.25
    scale_cond: bool = True
    scale_dim: int = 64
    img_channels: int = 3
    fov: float | None = None  # degrees of a turn that one canvas spans: a 360° model; None: a plane

    def __post_init__(self) -> None:
        if self.grid not in ("exact", "stylegan3"):
            raise ConfigError(f"grid must be 'exact' or 'stylegan3', got {self.grid!r}")
        if self.fov is not None and not (math.isfinite(self.fov) and 1 <= self.fov <= 360):
            raise ConfigError(f"fov must be between 1 and 360 degrees, got {self.fov}")
        try:
            self.plan()
        except ValueError as exc:
            raise ConfigError(f"generator: {exc}") from None

    def plan(self) -> SynthesisPlan:
        return plan_synthesis(self.resolution, self.num_layers, self.critical_layers, self.first_cutoff,
                              channel_base=self.channel_base, channel_max=self.channel_max,
                              img_channels=self.img_channels)

    @property
    def num_ws(self) -> int:
        return self.num_layers + 1

    @property
    def turn(self) -> float | None:
        """P: canvas widths in a full turn (a 360° model), or None (a plane)."""
        return None if self.fov is None else 360.0 / self.fov

    def size_step(self) -> int:
        """Output sides must be multiples of this: every grid then has an even number of samples."""
        return 2 * self.plan().coarsest_spacing

    def architecture(self) -> dict:
        """What a checkpoint must match to be loaded into this network (grid is how it is run)."""
        return {k: getattr(self, k) for k in ("resolution", "z_dim", "w_dim", "mapping_layers", "num_layers",
                                                "critical_layers", "channel_base", "channel_max", "first_cutoff",
                                                "scale_cond", "scale_dim", "img_channels", "fov")}


class RunningAverage:
    """An EMA buffer (w_avg, a layer's input magnitude) that training forwards observe and the
    trainer moves once per step (`Generator.commit_running_averages`), from the mean of every
    micro-batch's and every rank's observation. Forwards within a step all read the buffer as it
    was, so a step gives the same result on one device or several, in one batch or in
    --batch-gpu chunks (StyleGAN3 moves it inside each forward: one step of lag, at beta 0.999
    or 0.998, is all that differs)."""

    def __init__(self, buffer: torch.Tensor, beta: float):
        self.buffer, self.beta = buffer, beta
        self.observed: list[torch.Tensor] = []

    def observe(self, value: torch.Tensor) -> None:
        self.observed.append(value.float())  # fp32 whatever the autocast: a mean over many steps

    def pending(self) -> torch.Tensor | None:
        return torch.stack(self.observed).mean(0) if self.observed else None

    def commit(self, value: torch.Tensor) -> None:
        self.buffer.copy_(value.view_as(self.buffer).lerp(self.buffer, self.beta))
        self.observed.clear()


class MappingNetwork(nn.Module):
    def __init__(self, cfg: GeneratorConfig, lr_mul: float = 0.01, w_avg_beta: float = 0.998):
        super().__init__()
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.layers = nn.Sequential(*[FullyConnected(a, b, lr_mul=lr_mul, activation=True)
                                      for a, b in zip(dims[:-1], dims[1:])])
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        self.num_ws = cfg.num_ws
        self.w_stat = RunningAverage(self.w_avg, w_avg_beta)

    def forward(self, z: torch.Tensor, psi: float = 1.0, update_avg: bool = False) -> torch.Tensor:
        w = self.layers(normalize_2nd_moment(z))
        if update_avg:
            self.w_stat.observe(w.detach().float().mean(0))
        if psi != 1:
            w = self.w_avg.lerp(w.float(), psi)
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)


class FourierInput(nn.Module):
    """Fourier features of canvas coordinates, sampled at a patch's input grid through T.

    Frequencies are drawn uniformly over the disc of radius `cutoff` cycles per canvas (the
    first layer's band), phases uniformly; the bank is fixed, then mixed by a learned c x c
    matrix. A feature is faded out as its frequency nears the input grid's Nyquist at the
    patch's scale (StyleGAN3's amplitude ramp): at S = R that is StyleGAN3's input exactly.

    On a cylinder (`turn` = P canvas widths per 360°), canvas point (u, v) is the point at angle
    2 pi u / P on a cylinder of circumference P, and each feature is a plane wave in that 3-D
    space: its frequency (fx, fy) has its horizontal part turned by a fixed random tilt about the
    cylinder's axis. The wave's frequency along the surface is never more than |(fx, fy)|, so the
    band and the amplitude ramp hold as on the plane; near u = 0 an untilted feature is the plane's.
    """

    def __init__(self, channels: int, cutoff: float, rate: int, resolution: int, seed: int = 0,
                 turn: float | None = None):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        radius = cutoff * torch.rand(channels, generator=g).sqrt()
        angle = torch.rand(channels, generator=g) * 2 * math.pi
        self.register_buffer("freqs", torch.stack([radius * angle.cos(), radius * angle.sin()], 1))
        self.register_buffer("phases", torch.rand(channels, generator=g) - 0.5)
        if turn is not None:  # drawn after the plane's, which therefore stay what they were
            self.register_buffer("tilts", torch.rand(channels, generator=g) * 2 * math.pi)
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.cutoff, self.rate, self.resolution, self.turn = cutoff, rate, resolution, turn

    def coordinates(self, transform: torch.Tensor, n: int, side: int) -> torch.Tensor:
        """Canvas coordinates (b, side, side, 2) of the input samples of an n x n patch, in fp64."""
        patch = sample_grid_positions(self.rate * n // self.resolution, side, transform.device, torch.float64)
        return torch.einsum("bij,hwj->bhwi", transform[:, :2].double(), patch)

    def waves(self, coords: torch.Tensor) -> torch.Tensor:
        """Each feature's phase, in cycles, at canvas coordinates (b, h, w, 2) fp64: (b, h, w, c)."""
        if self.turn is None:
            return coords.float() @ self.freqs.T + self.phases
        # Computed in fp64: u runs over the whole turn, and the wave must repeat exactly after it.
        theta = coords[..., :1] * (2 * math.pi / self.turn)
        radius = self.turn / (2 * math.pi)
        fx, fy = self.freqs.double().unbind(1)
        tilts = self.tilts.double()
        across = radius * (theta.sin() * tilts.cos() + (1 - theta.cos()) * tilts.sin())
        return (across * fx + coords[..., 1:] * fy + self.phases.double()).float()

    def forward(self, transform: torch.Tensor, scale: torch.Tensor, n: int, side: int) -> torch.Tensor:
        # The whole input in fp32 (coordinates in fp64), autocast or not: bf16's
        # 8-bit mantissa would put a canvas coordinate pixels off deep in a zoom, and training
        # would see other inputs than inference.
        with torch.autocast(transform.device.type, enabled=False):
            coords = self.coordinates(transform, n, side)
            x = torch.sin(2 * math.pi * self.waves(coords))  # b h w c
            nyquist = self.rate * scale.float()[:, None] / (2 * self.resolution)  # cycles per canvas
            # Full up to the band, fading to zero at the grid's Nyquist; below S = R/4 the
            # Nyquist falls inside the band, and the ramp becomes a hard cut at it.
            ramp = (nyquist - self.cutoff).clamp(min=1e-6)
            amplitude = ((nyquist - self.freqs.norm(dim=1)[None, :]) / ramp).clamp(0, 1)
            x = x * amplitude[:, None, None, :]
            # The channel mix too: it is small, and the input is then exactly fp32's.
            x = x @ (self.weight.float() / math.sqrt(self.weight.shape[1])).T
        return x.permute(0, 3, 1, 2).contiguous()


class SynthesisLayer(nn.Module):
    """Modulated 3x3 valid convolution, then the filtered leaky ReLU: upsample to the layer's
    temporary rate, leaky ReLU there (its harmonics then mostly fall above the output band), and
    low-pass and downsample to the output rate. toRGB is a 1x1 modulated convolution alone."""

    def __init__(self, spec: LayerSpec, cfg: GeneratorConfig):
        super().__init__()
        self.spec = spec
        cin, cout = spec.in_channels, spec.out_channels
        kernel = 1 if spec.torgb else 3
        self.affine = FullyConnected(cfg.w_dim, cin, bias_init=1.0)
        # Zero-initialised: a stage-1 network starts stage 2 rendering exactly as before, and the
        # scale's influence is learned from there.
        self.scale_affine = FullyConnected(cfg.scale_dim, cin, zero=True) if cfg.scale_cond else None
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("magnitude_ema", torch.ones(()))
        self.magnitude = RunningAverage(self.magnitude_ema, cfg.magnitude_ema_beta)
        self.weight_gain = 1 / math.sqrt(cin * kernel * kernel)
        self.up = Resampler(lowpass(taps(spec.up), spec.in_cutoff, spec.in_half_width, spec.tmp_rate),
                            spec.up, up=True)
        self.down = Resampler(lowpass(taps(spec.down), spec.out_cutoff, spec.out_half_width, spec.tmp_rate),
                              spec.down, up=False)
        self.gain = 1.0 if spec.torgb else math.sqrt(2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, embed: torch.Tensor | None, sides: LayerSides,
                update_ema: bool = False) -> torch.Tensor:
        if update_ema:
            self.magnitude.observe(x.detach().float().square().mean())
        # Exact grids are just the size the filters need. StyleGAN3's are smaller: convolve with
        # one ring of zeros (a 'full' convolution, as StyleGAN3 does) and pad the rest with zeros
        # after the bias, rather than convolving the zeros too.
        x = pad_or_crop(x, min(sides.input, x.shape[-1] + self.weight.shape[-1] - 1))
        styles = self.affine(w)
        if self.scale_affine is not None and embed is not None:
            styles = styles + self.scale_affine(embed)
        styles = styles.float()
        if self.spec.torgb:
            styles = styles * self.weight_gain
        weight = self.weight * (1.0 if self.spec.torgb else self.weight_gain)
        # Modulating activations instead of weights: one shared convolution for the whole batch,
        # the same arithmetic as StyleGAN's per-sample weights.
        x = F.conv2d(x * styles[:, :, None, None].to(x.dtype), weight)
        if not self.spec.torgb:
            d = (weight.float().square().sum(dim=(2, 3)) @ styles.square().T).T  # b x cout
            x = x * (d + 1e-8).rsqrt()[:, :, None, None].to(x.dtype)
        # After demodulation, which would cancel any gain on the input: the input's magnitude,
        # divided out, keeps every layer's activations near unit scale as training moves them.
        x = x * self.magnitude_ema.rsqrt().to(x.dtype)
        x = x + self.bias[None, :, None, None].to(x.dtype)
        if self.spec.torgb:
            return x
        x = self.up(pad_or_crop(x, sides.conv), sides.fine)
        x = F.leaky_relu(x, 0.2) * self.gain
        return self.down(x, sides.output)


class Generator(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.plan = cfg.plan()
        self.mapping = MappingNetwork(cfg)
        self.embed = ScaleEmbedding(cfg.resolution, cfg.scale_dim) if cfg.scale_cond else None
        self.input = FourierInput(self.plan.input_channels, self.plan.input_cutoff, self.plan.input_rate,
                                  cfg.resolution, turn=cfg.turn)
        self.layers = nn.ModuleList(SynthesisLayer(spec, cfg) for spec in self.plan.layers)
        self._sides: dict[tuple[int, str], tuple[int, list[LayerSides]]] = {}

    def sides(self, n: int, grid: str | None = None) -> tuple[int, list[LayerSides]]:
        key = (n, grid or self.cfg.grid)
        if key not in self._sides:
            self._sides[key] = grid_sizes(self.plan, n, key[1])
        return self._sides[key]

    def running_averages(self) -> list[RunningAverage]:
        return [self.mapping.w_stat] + [layer.magnitude for layer in self.layers]

    @torch.no_grad()
    def commit_running_averages(self, across_ranks: Callable[[torch.Tensor], torch.Tensor] = lambda t: t) -> None:
        """Move w_avg and the magnitude EMAs by this step's observations: their mean over the
        micro-batches, then over ranks (`across_ranks`, an in-place all-reduce mean: one for all).
        Means of equal shares average exactly, so every rank commits the same values."""
        stats = [(avg, avg.pending()) for avg in self.running_averages()]
        stats = [(avg, value) for avg, value in stats if value is not None]
        if not stats:
            return
        flat = across_ranks(torch.cat([value.reshape(-1) for _, value in stats]))
        for (avg, _), value in zip(stats, flat.split([v.numel() for _, v in stats])):
            avg.commit(value)

    def synthesis(self, ws: torch.Tensor, transform: torch.Tensor, scale: torch.Tensor, size: int | None = None,
                  update_ema: bool = False, grid: str | None = None) -> torch.Tensor:
        n = size or self.cfg.resolution
        input_side, sides = self.sides(n, grid)
        embed = self.embed(scale) if self.embed is not None else None
        x = self.input(transform, scale, n, input_side)
        for i, (layer, s) in enumerate(zip(self.layers, sides)):
            x = layer(x, ws[:, i], embed, s, update_ema)
        return x * self.cfg.output_scale

    def forward(self, z: torch.Tensor, transform: torch.Tensor, scale: torch.Tensor, size: int | None = None,
                psi: float = 1.0, update_avg: bool = False) -> torch.Tensor:
        """update_avg: a training step's forward pass; it observes w and the layers' input
        magnitudes, which commit_running_averages then folds into their running averages."""
        return self.synthesis(self.mapping(z, psi, update_avg), transform, scale, size, update_ema=update_avg)
