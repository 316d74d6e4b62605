"""What training will see: a handful of patches through the real loader, drawn, plotted and saved.

`contact_sheet.png` shows the patches with their scale S and canvas side N; `distribution.png`
shows where the draws fell (the scale's quantile within each image's own [S_min, S_max], which
the chosen distribution makes uniform, the scale itself, and the window centres on the canvas);
`patches.npz` holds the arrays a metric or a test would pair with generated patches.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from plumbing.atomic import atomic_write, atomic_write_json, atomic_write_png
from plumbing.font import label_font

from ..geometry import scale_cdf, scale_range
from .pipeline import LoaderConfig, PatchLoader

SHEET_BACKGROUND = (18, 18, 20)
TEXT = (235, 235, 235)
DIM_TEXT = (150, 150, 155)


@dataclass(frozen=True)
class PreviewResult:
    images: np.ndarray  # n x p x p x 3 uint8
    transforms: np.ndarray  # n x 3 x 3
    scales: np.ndarray
    centres: np.ndarray  # n x 2, (cu, cv)
    canvas_boxes: np.ndarray  # n x 3, (ox, oy, N) native pixels
    native_sizes: np.ndarray  # n x 2, (W, H)
    keys: np.ndarray
    counts: dict[str, int]


def collect(config: LoaderConfig, n: int, progress: Callable[[int], None] | None = None) -> PreviewResult:
    """The first n patches of rank 0's stream, one process, in stream order."""
    loader = PatchLoader(config, rank=0, world_size=1)
    parts: dict[str, list] = {k: [] for k in ("image", "transform", "scale", "centre", "canvas", "native_size", "key")}
    for batch in loader:
        for name, values in parts.items():
            values.extend(batch.key if name == "key" else getattr(batch, name).numpy())
        if progress:
            progress(len(batch))
        if len(parts["key"]) >= n:
            break
    got = len(parts["key"])
    images = np.stack(parts["image"][:n]).transpose(0, 2, 3, 1) if got else np.zeros((0, 0, 0, 3), np.uint8)
    return PreviewResult(
        images=images.astype(np.uint8), transforms=np.array(parts["transform"][:n], np.float64),
        scales=np.array(parts["scale"][:n]), centres=np.array(parts["centre"][:n]),
        canvas_boxes=np.array(parts["canvas"][:n], np.int64), native_sizes=np.array(parts["native_size"][:n], np.int64),
        keys=np.array(parts["key"][:n]), counts=loader.stats.totals(),
    )


def contact_sheet(result: PreviewResult, columns: int | None = None, cell: int = 192) -> Image.Image:
    n = len(result.keys)
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / columns))
    pad, line = 6, max(11, cell // 14)
    font = label_font(line - 2)
    sheet = Image.new("RGB", (columns * (cell + pad) + pad, rows * (cell + 2 * line + pad) + pad), SHEET_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for i in range(n):
        x = pad + (i % columns) * (cell + pad)
        y = pad + (i // columns) * (cell + 2 * line + pad)
        tile = Image.fromarray(result.images[i]).resize((cell, cell), Image.Resampling.LANCZOS)
        sheet.paste(tile, (x, y))
        n_side = int(result.canvas_boxes[i][2])
        draw.text((x, y + cell + 1), f"S={result.scales[i]:.0f} of N={n_side}", font=font, fill=TEXT)
        draw.text((x, y + cell + line), str(result.keys[i])[-18:], font=font, fill=DIM_TEXT)
    return sheet


def scale_quantiles(result: PreviewResult, config: LoaderConfig) -> np.ndarray:
    """Each draw's S as a quantile of its own image's scale distribution: uniform if all is well."""
    stream = config.stream
    out = []
    for s, box in zip(result.scales, result.canvas_boxes):
        bounds = scale_range(int(box[2]), stream.min_scale, stream.s_max, stream.upsample)
        low, high = bounds if bounds else (s, s)
        out.append(float(scale_cdf(np.array([s]), low, high, stream.distribution)[0]) if high > low else 0.5)
    return np.array(out)


def distribution_figure(result: PreviewResult, config: LoaderConfig) -> Figure:
    fig = Figure(figsize=(15, 4.6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax_q, ax_s, ax_c = fig.subplots(1, 3)
    n = len(result.keys)
    quantiles = scale_quantiles(result, config)
    ax_q.hist(quantiles, bins=10, range=(0, 1), color="#6baed6", edgecolor="white")
    ax_q.axhline(n / 10, color="#de2d26", linestyle="--", label="expected")
    ax_q.set_title(f"S as a quantile of its image's {config.stream.distribution} range", fontsize=11, loc="left")
    ax_q.set_xlabel("quantile of S in [S_min, S_max]")
    ax_q.set_ylabel("patches")
    ax_q.legend(fontsize=8)
    ax_s.hist(result.scales, bins=20, color="#31a354", edgecolor="white")
    ax_s.set_title("scale S (pixels across the canvas)", fontsize=11, loc="left")
    ax_s.set_xlabel("S")
    ax_c.scatter(result.centres[:, 0], result.centres[:, 1], s=10, c=np.log(result.scales), cmap="viridis")
    ax_c.set_xlim(-0.5, 0.5)
    ax_c.set_ylim(0.5, -0.5)  # v runs down, as in the image
    ax_c.set_aspect("equal")
    ax_c.set_title("window centres (cu, cv) on the canvas, colour = log S", fontsize=11, loc="left")
    ax_c.set_xlabel("u")
    ax_c.set_ylabel("v")
    fig.suptitle(f"{n} draws of the {config.stream.stream} stream, p={config.stream.size}, seed {config.seed}", fontsize=13)
    return fig


def write_preview(result: PreviewResult, config: LoaderConfig, out: str | Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = io.BytesIO()
    np.savez_compressed(
        arrays, images=result.images, transforms=result.transforms, scales=result.scales, centres=result.centres,
        canvas_boxes=result.canvas_boxes, native_sizes=result.native_sizes, keys=result.keys,
    )
    record = {"config": asdict(config), "patches": len(result.keys), "counts": result.counts}
    atomic_write_png(out / "contact_sheet.png", contact_sheet(result))
    atomic_write_png(out / "distribution.png", distribution_figure(result, config))
    atomic_write(out / "patches.npz", arrays.getvalue())
    atomic_write_json(out / "preview.json", record, indent=2, default=str)
    return [out / name for name in ("contact_sheet.png", "distribution.png", "patches.npz", "preview.json")]
