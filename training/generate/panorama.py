"""A 360° model's whole turn as one image: the geometry `--panorama` and a run's sample grids share.

A turn is P = 360 / fov canvas widths (generator.py). An image W pixels wide renders the canvas
at S = W / P, so that its width is exactly one turn; W is a multiple of the generator's size
step, so the plane's render repeats after exactly W pixels and the left and right edges join.
"""

from __future__ import annotations

import numpy as np
import torch

from ..networks.generator import Generator, GeneratorConfig
from ..networks.render import DISPLAY_SIDE
from .tiles import Tiling, render_rows


def turn_width(cfg: GeneratorConfig, height: int) -> int:
    """The width of a turn about `height` pixels high (one frame high), a multiple of the size step."""
    step = cfg.size_step()
    return step * max(1, round(cfg.turn * height / step))


def turn_tiling(cfg: GeneratorConfig, width: int, height: int, tile: int) -> Tiling:
    return Tiling(width, height, tile, width / cfg.turn)


@torch.no_grad()
def panorama_strips(g: Generator, z: torch.Tensor) -> np.ndarray:
    """One turn per latent, a frame (about R) high, stacked with a white gap: a 360° run's samples."""
    r = g.cfg.resolution
    width = turn_width(g.cfg, r)
    tiling = turn_tiling(g.cfg, width, round(width / g.cfg.turn), r)
    enlarge = max(1, -(-DISPLAY_SIDE // r))  # tiny presets: whole-pixel blocks a person can see
    strips = []
    for ws in g.mapping(z).split(1):
        turn = np.concatenate([row.copy() for row in render_rows(g, ws, tiling, tiling.columns)], 0)
        strips.append(turn.repeat(enlarge, 0).repeat(enlarge, 1))
        strips.append(np.full((2, width * enlarge, 3), 255, np.uint8))
    return np.concatenate(strips[:-1], 0)
