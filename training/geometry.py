"""Patch geometry, DESIGN.md section 3, in one place: canvases, scales, windows, transforms.

An image of display size W x H is seen through a square canvas of side N = min(W, H) at native
offset (ox, oy). A patch of p x p pixels renders the canvas at resolution S (pixels across the
whole canvas) over the window of width p/S centred at canvas coordinates (cu, cv), which run
over [-0.5, 0.5]. Its transform maps patch coordinates to canvas coordinates:

    T = [[p/S, 0, cu], [0, p/S, cv], [0, 0, 1]],   canvas = T @ patch

A mirrored patch (random horizontal flips, --mirror) shows the canvas flipped left to right:
its pixels are the window's pixels flipped, and its T is that of the mirrored canvas, where the
window centre lies at -cu. The native window (`window`) is the same pixels either way.

Everything here is pure arithmetic on numbers; pixels are the decoder's business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

ScaleDistribution = Literal["uniform", "log-uniform"]


@dataclass(frozen=True)
class Canvas:
    """The square of native display pixels [ox, ox + n) x [oy, oy + n) that a patch is cut from."""

    ox: int
    oy: int
    n: int


def patch_transform(scale: float, cu: float, cv: float, size: int) -> np.ndarray:
    """T of DESIGN.md 3 for a size x size patch rendering the canvas at scale S, centred at
    (cu, cv): canvas = T @ patch. The loader, the networks and the metrics all use this one."""
    e = size / scale
    return np.array([[e, 0.0, cu], [0.0, e, cv], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class PatchDraw:
    """One patch: where it lies on which canvas, and at which resolution it renders it."""

    canvas: Canvas
    scale: float  # S: pixels across the whole canvas
    cu: float  # window centre, canvas coordinates in [-0.5, 0.5]
    cv: float
    size: int  # p: pixels across the patch
    mirror: bool = False  # shows the canvas flipped left to right (the renderers flip the pixels)

    @property
    def extent(self) -> float:
        """Window width in canvas units, p/S."""
        return self.size / self.scale

    def transform(self) -> np.ndarray:
        """T as the pixels show it: for a mirrored patch, T on the mirrored canvas (u -> -u), so
        that the networks see a consistent picture of a flipped image."""
        return patch_transform(self.scale, -self.cu if self.mirror else self.cu, self.cv, self.size)

    def window(self) -> tuple[float, float, float]:
        """(x0, y0, w): the window's top-left corner and width, in native display pixels."""
        c = self.canvas
        half = self.extent / 2
        return (c.ox + (self.cu + 0.5 - half) * c.n, c.oy + (self.cv + 0.5 - half) * c.n, c.n * self.extent)

    def density(self) -> float:
        """Patch pixels per native pixel, S/N: what a decoder must deliver at least."""
        return self.scale / self.canvas.n


def pixel_centres(p: int) -> np.ndarray:
    """Patch coordinates of the centres of a patch's p pixels along one axis (networks/render.py's
    pixel_grid is the same grid in torch, for the networks)."""
    return (np.arange(p) + 0.5) / p - 0.5


def patch_to_native(draw: PatchDraw, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Native display coordinates of patch coordinates (u, v), through T and the canvas box."""
    t = draw.transform()
    cu, cv = t[0, 0] * u + t[0, 2], t[1, 1] * v + t[1, 2]
    if draw.mirror:  # T maps onto the mirrored canvas; the native image is the unmirrored one
        cu = -cu
    c = draw.canvas
    return c.ox + (cu + 0.5) * c.n, c.oy + (cv + 0.5) * c.n


def draw_canvas(width: int, height: int, rng: np.random.Generator, centred: bool = False) -> Canvas:
    """A square of side min(W, H), at a random whole-pixel offset along the longer side."""
    n = min(width, height)
    if centred:
        return Canvas((width - n) // 2, (height - n) // 2, n)
    return Canvas(int(rng.integers(0, width - n + 1)), int(rng.integers(0, height - n + 1)), n)


def scale_range(n: int, s_min: float, s_max: float | None, upsample: bool) -> tuple[float, float] | None:
    """[S_min, S_max] for a canvas of side n, or None when the canvas is too small.

    S_max is the native side (never invent detail), lowered to the cap `s_max` when given. A
    canvas smaller than S_min is unusable unless upsampling is allowed, and then renders at S_min.
    """
    high = float(n) if s_max is None else min(float(n), float(s_max))
    if high >= s_min:
        return float(s_min), high
    return (float(s_min), float(s_min)) if upsample else None


def draw_scale(rng: np.random.Generator, low: float, high: float, distribution: ScaleDistribution) -> float:
    if high <= low:
        return float(low)
    if distribution == "uniform":
        return float(rng.uniform(low, high))
    if distribution == "log-uniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    raise ValueError(f"unknown scale distribution {distribution!r}")


def draw_centre(rng: np.random.Generator, extent: float) -> tuple[float, float]:
    """A window centre, uniform over the positions that keep the window inside the canvas."""
    reach = max(0.0, 0.5 - extent / 2)
    return float(rng.uniform(-reach, reach)), float(rng.uniform(-reach, reach))


def scale_cdf(s: np.ndarray, low: float, high: float, distribution: ScaleDistribution) -> np.ndarray:
    """The CDF of the scale distribution, for statistical checks of what the sampler draws."""
    s = np.clip(np.asarray(s, dtype=np.float64), low, high)
    if distribution == "uniform":
        return (s - low) / (high - low)
    return np.log(s / low) / math.log(high / low)


def draw_patch(
    width: int,
    height: int,
    size: int,
    rng: np.random.Generator,
    s_min: float,
    s_max: float | None = None,
    distribution: ScaleDistribution = "uniform",
    upsample: bool = False,
    centred: bool = False,
) -> PatchDraw | None:
    """A random patch of an image of display size width x height, or None if it is too small."""
    canvas = draw_canvas(width, height, rng, centred)
    bounds = scale_range(canvas.n, s_min, s_max, upsample)
    if bounds is None:
        return None
    scale = draw_scale(rng, *bounds, distribution)
    cu, cv = (0.0, 0.0) if centred else draw_centre(rng, size / scale)
    return PatchDraw(canvas, scale, cu, cv, size)


def whole_canvas(width: int, height: int, resolution: int, rng: np.random.Generator,
                 centred: bool = False) -> PatchDraw:
    """The whole canvas at the base resolution R: S = p = R, so T is the identity."""
    return PatchDraw(draw_canvas(width, height, rng, centred), float(resolution), 0.0, 0.0, resolution)
