"""Where the tiles of a W x H image lie on the canvas (DESIGN.md 3), and rendering them in batches.

The canvas is the centred square of side S = min(W, H) pixels: S is the scale, and a wider
(or taller) image extends the canvas sideways (or up and down) with the same T. A panorama of
a 360° model sets S itself: W / P, so that its width is one turn of P canvas widths. Pixel (x, y)
has its centre at canvas coordinates ((x + 0.5 - W/2) / S, (y + 0.5 - H/2) / S). Tile (r, c)
covers pixels [c p, (c + 1) p) x [r p, (r + 1) p); the last column and row of tiles reach past
the image and are cropped, so any size comes out exact.

Why tiles join without seams: on exact grids (generator.py) a p x p patch depends only on the
sample lattices of its layers, all centred on the patch; tiles whose centres are a multiple of
p apart (p is a multiple of twice the coarsest spacing) sample the very same lattices, so every
tile is a crop of one render of the whole plane. When S is itself a multiple of the size step,
that render is also the one-pass render of the canvas at S.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import patch_transform
from ..networks.generator import Generator
from ..networks.render import to_uint8


@dataclass(frozen=True)
class Tiling:
    width: int
    height: int
    tile: int
    canvas_scale: float | None = None  # S; None: min(width, height)

    @property
    def scale(self) -> float:
        return min(self.width, self.height) if self.canvas_scale is None else self.canvas_scale

    @property
    def columns(self) -> int:
        return math.ceil(self.width / self.tile)

    @property
    def rows(self) -> int:
        return math.ceil(self.height / self.tile)

    @property
    def count(self) -> int:
        return self.rows * self.columns

    def centre(self, row: int, column: int) -> tuple[float, float]:
        """(cu, cv) of tile (row, column): its centre pixel position, measured from the image's
        centre, in canvas units (S pixels per unit)."""
        p, s = self.tile, self.scale
        return ((column + 0.5) * p - self.width / 2) / s, ((row + 0.5) * p - self.height / 2) / s

    def transforms(self, tiles: list[tuple[int, int]]) -> np.ndarray:
        return np.stack([patch_transform(self.scale, *self.centre(r, c), self.tile) for r, c in tiles])

    def extent(self) -> dict:
        """The canvas coordinates the image spans (DESIGN.md 3), for the sidecar."""
        s = self.scale
        return {"u": [-self.width / (2 * s), self.width / (2 * s)], "v": [-self.height / (2 * s), self.height / (2 * s)]}


@torch.no_grad()
def render_tiles(g: Generator, ws: torch.Tensor, tiling: Tiling, batch: int
                 ) -> Iterator[tuple[list[tuple[int, int]], torch.Tensor]]:
    """(positions, images) for `batch` tiles at a time in raster order (across row ends), so that
    device memory is bounded by the batch alone. `ws` (1, num_ws, w_dim) is one latent."""
    order = [(r, c) for r in range(tiling.rows) for c in range(tiling.columns)]
    for start in range(0, len(order), batch):
        chunk = order[start:start + batch]
        k = len(chunk)
        t = torch.from_numpy(tiling.transforms(chunk)).to(ws.device)
        s = torch.full((k,), float(tiling.scale), device=ws.device)
        yield chunk, g.synthesis(ws.expand(k, -1, -1), t, s, tiling.tile, grid="exact")


def render_rows(g: Generator, ws: torch.Tensor, tiling: Tiling, batch: int,
                progress: Callable[[int], None] = lambda n: None) -> Iterator[np.ndarray]:
    """The image, top to bottom, one row of tiles at a time: (h, W, 3) uint8 arrays, h = p but
    for the last, cropped to the image's width.

    Each yielded row is a view of the one row buffer: the consumer writes it out before asking
    for the next, so host memory holds one tile row whatever the image's size."""
    p, columns = tiling.tile, tiling.columns
    row = np.empty((p, columns * p, 3), np.uint8)
    for chunk, images in render_tiles(g, ws, tiling, batch):
        for (r, c), tile in zip(chunk, to_uint8(images)):
            row[:, c * p:(c + 1) * p] = tile
            if c == columns - 1:
                yield row[:min(p, tiling.height - r * p), :tiling.width]
        progress(len(chunk))
