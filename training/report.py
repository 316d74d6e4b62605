"""What a run leaves for people to look at: stats lines, training curves, sample grids.

Curves go through matplotlib's object API (Figure + FigureCanvasAgg), never pyplot: no global
state, safe in any process. Sample grids use fixed latents, so successive snapshots of one run
show the same images improving.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from shards.atomic import atomic_write

from .generator import Generator, patch_transform

CURVES = (("losses", ("loss_G", "loss_D")), ("D logits", ("D_real", "D_fake")), ("R1", ("R1",)),
          ("teacher L1", ("teacher",)))


def read_stats(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_stats(path: Path, step: int) -> None:
    """Drop ticks written after the checkpoint a resumed run restarts from."""
    kept = [r for r in read_stats(path) if r["step"] <= step]
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept).encode())


def append_stats(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def plot_curves(records: list[dict], path: Path) -> None:
    fig = Figure(figsize=(10, 7), dpi=90)
    FigureCanvasAgg(fig)
    for i, (title, keys) in enumerate(CURVES):
        ax = fig.add_subplot(2, 2, i + 1)
        for key in keys:
            pts = [(r["kimg"], r[key]) for r in records if r.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), label=key, marker="." if len(pts) < 30 else None)
        ax.set_title(title)
        ax.set_xlabel("kimg")
        if ax.has_data():
            ax.legend(loc="best", fontsize=8)
        else:  # e.g. the teacher loss in stage global
            ax.text(0.5, 0.5, "not in this run", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write(path, buffer.getvalue())


DISPLAY_SIDE = 128


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def sample_grid(g: Generator, z: torch.Tensor, patch_size: int, zooms: tuple[float, ...] = (2.0, 4.0)) -> np.ndarray:
    """Rows: one latent each. Columns: the global canvas at R, then centred p x p patches at
    S = zoom * R (the same latent seen closer)."""
    b, r = z.shape[0], g.cfg.resolution
    ws = g.mapping(z)
    eye = torch.eye(3, device=z.device).expand(b, 3, 3)
    columns = [g.synthesis(ws, eye, torch.full((b,), float(r), device=z.device), r)]
    for zoom in zooms:
        t = torch.from_numpy(patch_transform(zoom * r, 0.0, 0.0, patch_size)).to(z.device).expand(b, 3, 3)
        columns.append(g.synthesis(ws, t, torch.full((b,), zoom * r, device=z.device), patch_size))
    # Tiny presets render 16-32 px: enlarge by a whole factor (nearest) so a person can see them.
    side = max(r, patch_size) * max(1, -(-DISPLAY_SIDE // max(r, patch_size)))
    cells = [[np.asarray(Image.fromarray(img).resize((side, side), Image.Resampling.NEAREST))
              for img in to_uint8(col)] for col in columns]
    gap = 2
    grid = np.full((b * (side + gap) - gap, len(columns) * (side + gap) - gap, 3), 255, np.uint8)
    for c, col in enumerate(cells):
        for row, img in enumerate(col):
            y, x = row * (side + gap), c * (side + gap)
            grid[y:y + side, x:x + side] = img
    return grid


def write_png(path: Path, pixels: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())
