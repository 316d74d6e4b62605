"""Sample grids that explain themselves: a run's snapshots as labelled rows and columns.

Rows are seeds, the very latents `anyres-generate --seeds N` renders (generate/seeds.py), so an
image in a grid can be made again at any size. Columns say what they show: the global view at R,
then centred p x p windows at S = zoom x R with the window's width on the canvas. A 360° run's
grid is a whole turn per seed instead. Cells of tiny presets are enlarged by whole pixels.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from plumbing.font import label_font

from ..generate.panorama_turn import turn_tiling, turn_width
from ..generate.seeds import latent
from ..generate.tiles import render_rows
from ..networks.generator import Generator
from ..networks.render import DISPLAY_SIDE, identity_view, to_uint8, view

GRID_SEEDS = (0, 1, 2, 3)
GAP = 2
FONT_SIZE = 12


def enlarged(image: np.ndarray, side: int) -> np.ndarray:
    """Whole-pixel blocks until the shorter side is at least `side` (nearest: no invented blur)."""
    factor = max(1, -(-side // min(image.shape[:2])))
    return image.repeat(factor, 0).repeat(factor, 1)


def labelled(rows: list[list[np.ndarray]], row_labels: list[str], column_labels: list[str]) -> np.ndarray:
    """Cells (uint8 HWC, equal heights per row, equal widths per column) on white, a label band
    above the columns and one left of the rows."""
    font = label_font(FONT_SIZE)
    left = max(int(font.getlength(t)) for t in row_labels) + 2 * GAP
    top = FONT_SIZE + 3 * GAP
    widths = [max(row[c].shape[1] for row in rows) for c in range(len(column_labels))]
    heights = [max(cell.shape[0] for cell in row) for row in rows]
    # Columns at least as wide as their label: a tiny cell must not cut off what it shows.
    widths = [max(w, int(font.getlength(t)) + GAP) for w, t in zip(widths, column_labels)]
    sheet = Image.new("RGB", (left + sum(widths) + GAP * len(widths), top + sum(heights) + GAP * len(heights)),
                      "white")
    draw = ImageDraw.Draw(sheet)
    xs = [left + sum(widths[:c]) + GAP * c for c in range(len(widths))]
    for x, text in zip(xs, column_labels):
        draw.text((x, GAP), text, fill="black", font=font)
    y = top
    for row, text, height in zip(rows, row_labels, heights):
        draw.text((GAP, y + height // 2 - FONT_SIZE // 2), text, fill="black", font=font)
        for x, cell in zip(xs, row):
            sheet.paste(Image.fromarray(cell), (x, y))
        y += height + GAP
    return np.asarray(sheet)


def seed_latents(g: Generator, seeds: tuple[int, ...]) -> torch.Tensor:
    device = next(g.parameters()).device
    return torch.from_numpy(np.concatenate([latent(s, g.cfg.z_dim) for s in seeds])).float().to(device)


@torch.no_grad()
def sample_grid(g: Generator, patch_size: int, zooms: tuple[float, ...] = (2.0, 4.0),
                seeds: tuple[int, ...] = GRID_SEEDS) -> np.ndarray:
    """Rows: seeds. Columns: the global canvas at R, then centred p x p windows at S = zoom x R."""
    b, r = len(seeds), g.cfg.resolution
    ws = g.mapping(seed_latents(g, seeds))
    device = ws.device
    columns = [g.synthesis(ws, *identity_view(b, r, device), r, grid="exact")]
    labels = [f"global, S = R = {r}"]
    for zoom in zooms:
        columns.append(g.synthesis(ws, *view(b, zoom * r, patch_size, device), patch_size, grid="exact"))
        labels.append(f"S = {zoom:g}R, window {patch_size / (zoom * r):.3g}")
    side = max(DISPLAY_SIDE, r, patch_size)
    cells = [[enlarged(img, side) for img in to_uint8(col)] for col in columns]
    return labelled([list(row) for row in zip(*cells)], [f"seed {s}" for s in seeds], labels)


@torch.no_grad()
def panorama_grid(g: Generator, seeds: tuple[int, ...] = GRID_SEEDS) -> np.ndarray:
    """A 360° model's whole turn per seed, one frame (about R) high."""
    r, turn = g.cfg.resolution, g.cfg.turn
    width = turn_width(g.cfg, r)
    tiling = turn_tiling(g.cfg, width, round(width / turn), r)
    rows = []
    for ws in g.mapping(seed_latents(g, seeds)).split(1):
        strip = np.concatenate([row.copy() for row in render_rows(g, ws, tiling, tiling.columns)], 0)
        rows.append([enlarged(strip, DISPLAY_SIDE)])
    label = f"one turn: 360°, {turn:g} frames of {g.cfg.fov:g}°, left and right edges join"
    return labelled(rows, [f"seed {s}" for s in seeds], [label])
