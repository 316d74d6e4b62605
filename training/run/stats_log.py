"""What a run leaves for people to look at: stats lines, training curves, sample grids.

Curves go through matplotlib's object API (Figure + FigureCanvasAgg), never pyplot: no global
state, safe in any process. Sample grids (networks/render.py) use fixed latents, so successive
snapshots of one run show the same images improving.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from plumbing.atomic import atomic_write_jsonl, atomic_write_png

CURVES = (("losses", ("loss_G", "loss_D")), ("D logits", ("D_real", "D_fake")), ("R1", ("R1",)),
          ("teacher L1", ("teacher",)), ("ADA p", ("aug_p",)))


def read_stats(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_stats(path: Path, step: int) -> None:
    """Drop ticks written after the checkpoint a resumed run restarts from."""
    kept = [r for r in read_stats(path) if r["step"] <= step]
    atomic_write_jsonl(path, kept)


def append_stats(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def update_last_stats(path: Path, step: int, extra: dict) -> None:
    """Add `extra` (a tick's metrics) to the line of `step`, the last one. The line is written
    before the snapshot the metrics score, as every tick's is, so a run killed in between keeps
    its stats; the file is replaced whole (atomic_write), never left half rewritten."""
    records = read_stats(path)
    assert records and records[-1]["step"] == step, f"no stats line for step {step} to add metrics to"
    records[-1].update(extra)
    atomic_write_jsonl(path, records)


def plot_curves(records: list[dict], path: Path) -> None:
    fig = Figure(figsize=(15, 7), dpi=90)
    FigureCanvasAgg(fig)
    for i, (title, keys) in enumerate(CURVES):
        ax = fig.add_subplot(2, (len(CURVES) + 1) // 2, i + 1)
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
    atomic_write_png(path, fig)


def write_png(path: Path, pixels: np.ndarray) -> None:
    atomic_write_png(path, Image.fromarray(pixels))
