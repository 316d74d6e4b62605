"""A 360° model's whole turn as one image: the geometry `--panorama` and a run's sample grids
(run/grids.py) share.

A turn is P = 360 / fov canvas widths (generator.py). An image W pixels wide renders the canvas
at S = W / P, so that its width is exactly one turn; W is a multiple of the generator's size
step, so the plane's render repeats after exactly W pixels and the left and right edges join.
"""

from __future__ import annotations

from ..networks.generator import GeneratorConfig
from .tiles import Tiling


def turn_width(cfg: GeneratorConfig, height: int) -> int:
    """The width of a turn about `height` pixels high (one frame high), a multiple of the size step."""
    step = cfg.size_step()
    return step * max(1, round(cfg.turn * height / step))


def turn_tiling(cfg: GeneratorConfig, width: int, height: int, tile: int) -> Tiling:
    return Tiling(width, height, tile, width / cfg.turn)
