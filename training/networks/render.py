"""Rendering a generator through the patch transform T (DESIGN.md 3), in one place.

Every torch op that samples the canvas goes through `pixel_grid`, the torch twin of
`geometry.pixel_centres`; every view's T comes from `geometry.patch_transform`. The identity view
(the whole canvas at R, T = I) is what the global stage, the teacher and the sample grids render.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..geometry import patch_transform

if TYPE_CHECKING:  # the generator imports sample_grid_positions from here
    from .generator import Generator


def sample_grid_positions(across: int, side: int, device: torch.device,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Homogeneous patch coordinates (side, side, 3) of a centred grid of `side` samples per axis
    with `across` of them spanning the patch: sample j sits at (j - (side - 1) / 2) / across."""
    t = (torch.arange(side, device=device, dtype=torch.float64) - (side - 1) / 2) / across
    v, u = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([u, v, torch.ones_like(u)], -1).to(dtype)


def pixel_grid(size: int, device: torch.device, margin: int = 0) -> torch.Tensor:
    """Homogeneous patch coordinates (h, w, 3) of the centres of pixels i in [-margin, size + margin)
    of a size x size patch: pixel i's centre is at (i + 0.5) / size - 0.5."""
    return sample_grid_positions(size, size + 2 * margin, device)


def view(batch: int, scale: float, size: int, device: torch.device, cu: float = 0.0,
         cv: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, S) for `batch` samples that all see the size x size window centred at (cu, cv) at scale S."""
    t = torch.from_numpy(patch_transform(scale, cu, cv, size)).to(device).expand(batch, 3, 3)
    return t, torch.full((batch,), float(scale), device=device)


def identity_view(batch: int, resolution: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole canvas at R: S = p = R, so T is the identity."""
    return view(batch, resolution, resolution, device)


def render_full(g: Generator, ws: torch.Tensor, scale: int, tile: int | None = None) -> torch.Tensor:
    """The canvas at resolution `scale`: in one pass, or assembled from tile x tile patches.

    Tile (a, b) covers pixels [a*tile, (a+1)*tile) of the full image, so its window centre sits at
    ((a + 0.5) * tile / S - 0.5) in canvas units; `scale` must be a multiple of `tile`. Rendered on
    exact grids (generator.py): tiles are crops of the one-pass render, so they join without seams.
    """
    b = ws.shape[0]
    if tile is None or tile >= scale:
        return g.synthesis(ws, *identity_view(b, scale, ws.device), scale, grid="exact")
    assert scale % tile == 0, "the image side must be a whole number of tiles"
    n = scale // tile
    s = torch.full((b,), float(scale), device=ws.device)
    centres = [(k + 0.5) * tile / scale - 0.5 for k in range(n)]
    rows = []
    for cv in centres:
        t = torch.from_numpy(np.stack([patch_transform(scale, cu, cv, tile) for cu in centres])).to(ws.device)
        # All tiles of a row in one batch: (n * b) patches.
        tiles = g.synthesis(ws.repeat(n, 1, 1), t.repeat_interleave(b, 0), s.repeat(n), tile, grid="exact")
        rows.append(torch.cat(tiles.split(b), dim=3))
    return torch.cat(rows, dim=2)


DISPLAY_SIDE = 128


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
