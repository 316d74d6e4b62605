"""Pictures of a dataset: the spread of its image sizes, and a contact sheet of its samples.

The size plot reads the index alone, so it is cheap on any dataset, local or remote. The contact
sheet reads a random handful of samples by key, one seek each. Both draw without pyplot (a
`Figure` on its own Agg canvas), so a caller's matplotlib backend and state are left alone.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter, PercentFormatter
from PIL import Image, ImageDraw, ImageFont, ImageOps

from plumbing.atomic import atomic_write
from plumbing.font import label_font
from shards.format.limits import Limits
from shards.format.pixels import to_rgb
from shards.format.reader import Dataset, Sample
from shards.intake.probe import check_decode_cost

# The patch scales a multi-size dataset is trained at: the question a reader of these plots asks
# is how many images are large enough for each.
REFERENCE_SIDES = (256, 512, 1024, 2048, 4096)
REFERENCE_COLORS = ("#9e9ac8", "#6baed6", "#31a354", "#fd8d3c", "#de2d26")
# Axes always span at least these ranges, so plots of different datasets compare at a glance.
SIDE_RANGE = (128, 8192)
MEGAPIXEL_RANGE = (0.05, 30.0)
DPI = 120

# Contact sheet colours: dark, so that photos stand out and letterboxing stays quiet.
SHEET_BACKGROUND = (18, 18, 20)
LETTERBOX = (34, 34, 38)
FAILED = (92, 24, 28)  # a failed cell is red, so it is seen among dozens of photos
TEXT = (235, 235, 235)
DIM_TEXT = (150, 150, 155)
FAILED_TEXT = (255, 190, 190)


def size_label(pixels: float) -> str:
    """1024 -> "1K", 1536 -> "1.5K", 512 -> "512"."""
    return f"{pixels / 1024:g}K" if pixels >= 1024 else f"{pixels:g}"


def _log_range(values: np.ndarray, floor: tuple[float, float], pad: float = 1.25) -> tuple[float, float]:
    # Padding in ratio, not in pixels: on a log axis it is the same visual margin at any size.
    if values.size == 0:
        return floor
    return min(floor[0], float(values.min()) / pad), max(floor[1], float(values.max()) * pad)


def _side_axis(ax, axis: str, limits: tuple[float, float]) -> None:
    # Powers of two, labelled 256 / 1K / 4K: the sizes people think in, not 10^3.
    low, high = math.floor(math.log2(limits[0])), math.ceil(math.log2(limits[1]))
    # Every other octave on extreme ranges (a 16 px icon next to a 64K panorama), so labels
    # do not run into each other.
    ticks = [2.0**k for k in range(low, high + 1, 1 if high - low <= 12 else 2)]
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    (ax.set_xlim if axis == "x" else ax.set_ylim)(*limits)
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(FuncFormatter(lambda v, _: size_label(v)))
    target.set_minor_formatter(NullFormatter())


def _style(ax, title: str) -> None:
    ax.set_title(title, fontsize=12, loc="left")
    ax.grid(True, which="major", color="#d9d9d9", linewidth=0.8)
    ax.grid(True, which="minor", color="#f0f0f0", linewidth=0.5)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=9)


def _size_scatter(ax, width: np.ndarray, height: np.ndarray) -> None:
    # Photos pile up on a few camera sizes: plotting each distinct size once, coloured by how
    # many images have it, shows the pile-ups and stays fast on millions of rows.
    sizes, counts = np.unique(np.stack([width, height], axis=1), axis=0, return_counts=True)
    order = np.argsort(counts, kind="stable")  # the biggest piles are drawn last, on top
    sizes, counts = sizes[order], counts[order]
    limits = _log_range(np.concatenate([width, height]), SIDE_RANGE)
    _side_axis(ax, "x", limits)
    _side_axis(ax, "y", limits)
    ax.set_aspect("equal")
    ax.plot(limits, limits, color="#636363", linewidth=1, linestyle="--", zorder=1)
    # Labels sit at the edges: the middle of the plot is where the points crowd.
    ax.text(limits[0] * 1.3, limits[0] * 1.45, "square", color="#636363", fontsize=8, rotation=45)
    # An image can train patches at side s when both its sides reach s: right of and above
    # the corner of the L.
    for side, color in zip(REFERENCE_SIDES, REFERENCE_COLORS):
        if limits[0] < side < limits[1]:
            ax.plot([side, side, limits[1]], [limits[1], side, side], color=color, linewidth=1, zorder=1)
            ax.text(side * 1.05, limits[1] / 1.08, size_label(side), color=color, fontsize=9, va="top")
    points = ax.scatter(
        sizes[:, 0],
        sizes[:, 1],
        c=counts,
        # Few points drawn big enough to find, many drawn small enough not to merge.
        s=float(np.clip(3000 / len(sizes), 6, 36)) + 14 * np.log10(counts),
        cmap="viridis",
        norm=LogNorm(vmin=1, vmax=max(2, int(counts.max()))),
        edgecolors="none",
        alpha=0.85,
        zorder=2,
    )
    colorbar = ax.figure.colorbar(points, ax=ax, shrink=0.8, pad=0.02)
    top = max(2, int(counts.max()))
    ticks = sorted({10**k for k in range(int(math.log10(top)) + 1)} | {top})
    colorbar.set_ticks(ticks, labels=[f"{t:,}" for t in ticks])
    colorbar.ax.yaxis.set_minor_formatter(NullFormatter())
    colorbar.set_label("images at this exact size", fontsize=9)
    colorbar.ax.tick_params(labelsize=8)
    ax.set_xlabel("width (px)", fontsize=11)
    ax.set_ylabel("height (px)", fontsize=11)
    _style(ax, f"width x height ({len(sizes):,} distinct size{'' if len(sizes) == 1 else 's'})")


def _threshold_legend(values: np.ndarray, thresholds, label) -> list[str]:
    total = max(1, values.size)
    return [
        f"{label(t)}: {int(np.sum(values >= t)):,} ({np.sum(values >= t) / total:.0%})" for t in thresholds
    ]


def _min_side_histogram(ax, side: np.ndarray) -> None:
    limits = _log_range(side, SIDE_RANGE)
    _side_axis(ax, "x", limits)
    ax.hist(side, bins=np.geomspace(*limits, 65), color="#4c72b0", edgecolor="white", linewidth=0.4)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    labels = _threshold_legend(side, REFERENCE_SIDES, lambda s: f"≥ {size_label(s)}")
    for threshold, color, label in zip(REFERENCE_SIDES, REFERENCE_COLORS, labels):
        ax.axvline(threshold, color=color, linewidth=1.6, label=label)
    ax.margins(y=0.3)  # headroom, so the legend can find a place clear of the bars
    ax.legend(title="shorter side", fontsize=8, title_fontsize=8, loc="best", framealpha=0.9)
    ax.set_xlabel("shorter side (px, log scale)", fontsize=11)
    ax.set_ylabel("images", fontsize=11)
    _style(ax, "shorter side: which patch scales each image can train")


def _megapixel_cdf(ax, megapixels: np.ndarray) -> None:
    limits = _log_range(megapixels, MEGAPIXEL_RANGE)
    ax.set_xscale("log")
    ax.set_xlim(*limits)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ordered = np.sort(megapixels)
    share = np.arange(1, ordered.size + 1) / ordered.size
    # Start at 0 on the left edge and end at 100% on the right, so one sample is still a step.
    ax.step(
        np.r_[limits[0], ordered, limits[1]], np.r_[0, share, 1], where="post", color="#4c72b0", linewidth=2
    )
    for side, color in zip(REFERENCE_SIDES, REFERENCE_COLORS):
        pixels = side * side / 1e6
        if limits[0] < pixels < limits[1]:
            ax.axvline(pixels, color=color, linewidth=1, linestyle=":")
            ax.text(pixels * 1.05, 0.02, f"{size_label(side)}²", color=color, fontsize=8, va="bottom")
    median = float(np.median(ordered))
    ax.axhline(0.5, color="#969696", linewidth=0.8, linestyle="--")
    ax.plot([median], [0.5], "o", color="#4c72b0")
    ax.annotate(
        f"median {median:.3g} MP", (median, 0.5), xytext=(8, 6), textcoords="offset points", fontsize=9
    )
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("megapixels (log scale)", fontsize=11)
    ax.set_ylabel("share of images at most this size", fontsize=11)
    _style(ax, "megapixels, cumulative")


def _write_png(out: str | Path, data: bytes) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, data)  # a reader never sees half a PNG, even if we are killed mid-write
    return out


def _save_figure(fig: Figure, out: str | Path) -> Path:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return _write_png(out, buffer.getvalue())


def plot_dataset(index: pa.Table, out: str | Path, title: str) -> Path:
    """Sizes of a dataset from its index: width x height, shorter side, megapixels. One PNG."""
    width = index["width"].to_numpy().astype(np.int64)
    height = index["height"].to_numpy().astype(np.int64)
    fig = Figure(figsize=(19, 6), dpi=DPI, layout="constrained")
    count = f"{index.num_rows:,} sample{'' if index.num_rows == 1 else 's'}"
    fig.suptitle(f"{title}: {count}", fontsize=15, fontweight="bold")
    if index.num_rows == 0:
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no samples", ha="center", va="center", fontsize=24, color="#636363")
        return _save_figure(fig, out)
    scatter_ax, hist_ax, cdf_ax = fig.subplots(1, 3, width_ratios=(1.1, 1, 1))
    _size_scatter(scatter_ax, width, height)
    _min_side_histogram(hist_ax, np.minimum(width, height))
    _megapixel_cdf(cdf_ax, width * height / 1e6)
    return _save_figure(fig, out)


# Contact sheet.


def choose_keys(index: pa.Table, n: int, seed: int = 0) -> list[str]:
    """`n` distinct keys at random, at most all of them; the same seed gives the same keys."""
    picks = np.random.default_rng(seed).choice(index.num_rows, size=min(n, index.num_rows), replace=False)
    return index["key"].take(pa.array(picks, pa.int64())).to_pylist()


def _orient(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        # A damaged EXIF block: probe recorded orientation 1 for it, so show it unrotated too.
        return image


def decode_thumbnail(data: bytes, thumb: int, apply_orientation: bool = True) -> Image.Image:
    """An RGB image fitting in thumb x thumb. Raises whatever Pillow raises on bad bytes."""
    with warnings.catch_warnings():
        # Stored images were admitted by curation under its own pixel limit, not Pillow's.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as image:
            # Bounded before decoding (pixels, progressive scans): the dataset may be hostile.
            limits = Limits.from_env()
            check_decode_cost(image, data, limits.max_pixels, limits.max_jpeg_scans)
            # JPEG then decodes at 1/2, 1/4 or 1/8 scale inside the DCT, still >= thumb a side:
            # a 24 MP photo costs about what a 0.4 MP one does. Other formats ignore it.
            image.draft("RGB", (thumb, thumb))
            image.load()
            rgb = to_rgb(_orient(image) if apply_orientation else image)
            # Resized here, while `image` is open: `rgb` may be that very image.
            return ImageOps.contain(rgb, (thumb, thumb), Image.Resampling.LANCZOS)


def _font_size(thumb: int) -> int:
    return max(9, round(thumb / 18))


def _pad(thumb: int) -> int:
    return max(3, thumb // 48)


def cell_size(thumb: int) -> tuple[int, int]:
    """(width, height) of one sheet cell: the thumb x thumb tile, two text lines, margins."""
    pad, line = _pad(thumb), _font_size(thumb) + 4
    return thumb + 2 * pad, thumb + 2 * line + 3 * pad


def grid_shape(n: int) -> tuple[int, int]:
    """(columns, rows) for n cells: as square as can be, filled row by row."""
    columns = max(1, math.ceil(math.sqrt(n)))
    return columns, max(1, math.ceil(n / columns))


def _fit_text(text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    # Cut from the middle: keys are `source-id`, and both ends tell samples apart.
    if font.getlength(text) <= width:
        return text
    keep = len(text)
    while keep > 2:
        keep -= 1
        short = text[: (keep + 1) // 2] + "..." + text[len(text) - keep // 2 :]
        if font.getlength(short) <= width:
            return short
    return text[:1] + "..."


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int, max_lines: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return [_fit_text(line, font, width) for line in lines[:max_lines]]


def _draw_label(
    draw: ImageDraw.ImageDraw, x: int, y: int, thumb: int, size: str, kind: str, key: str
) -> None:
    # The size is what the sheet is for; the format tag only shows where there is room left.
    font, line = label_font(_font_size(thumb)), _font_size(thumb) + 4
    size = _fit_text(size, font, thumb)
    draw.text((x, y), size, font=font, fill=TEXT)
    if font.getlength(f"{size}  {kind}") <= thumb:
        draw.text((x + thumb, y), kind, font=font, fill=DIM_TEXT, anchor="ra")
    draw.text((x, y + line), _fit_text(key, font, thumb), font=font, fill=DIM_TEXT)


def _draw_failure(draw: ImageDraw.ImageDraw, x: int, y: int, thumb: int, error: Exception) -> None:
    draw.rectangle((x, y, x + thumb - 1, y + thumb - 1), fill=FAILED)
    font, line, middle = label_font(_font_size(thumb)), _font_size(thumb) + 4, x + thumb // 2
    # Drop object reprs ("<_io.BytesIO object at 0x7f...>"): they change from run to run, and
    # the same seed must give the same sheet.
    message = re.sub(r"\s*<[^<>]*>", "", str(error))
    lines = [("undecodable", FAILED_TEXT), (type(error).__name__, DIM_TEXT)]
    lines += [
        (text, DIM_TEXT)
        for text in _wrap(message, font, thumb - 4, max_lines=max(0, min(3, thumb // line - 2)))
    ]
    top = y + (thumb - len(lines) * line) // 2
    for i, (text, fill) in enumerate(lines):
        draw.text(
            (middle, top + i * line), _fit_text(text, font, thumb - 4), font=font, fill=fill, anchor="ma"
        )


def _draw_cell(
    sheet: Image.Image, x: int, y: int, thumb: int, sample: Sample, apply_orientation: bool
) -> None:
    draw = ImageDraw.Draw(sheet)
    pad, meta = _pad(thumb), sample.meta
    tile_x, tile_y = x + pad, y + pad
    try:
        image = decode_thumbnail(sample.data, thumb, apply_orientation)
    except Exception as exc:
        # Any decoder failure on stored bytes is a property of that sample, worth seeing among
        # the others rather than a reason to lose the whole sheet.
        _draw_failure(draw, tile_x, tile_y, thumb, exc)
    else:
        draw.rectangle((tile_x, tile_y, tile_x + thumb - 1, tile_y + thumb - 1), fill=LETTERBOX)
        sheet.paste(image, (tile_x + (thumb - image.width) // 2, tile_y + (thumb - image.height) // 2))
    kind = meta.format if meta.mode == "RGB" else f"{meta.format} {meta.mode}"
    _draw_label(draw, tile_x, tile_y + thumb + pad, thumb, f"{meta.width}x{meta.height}", kind, meta.key)


def _draw_empty(sheet: Image.Image, thumb: int) -> None:
    pad = _pad(thumb)
    draw = ImageDraw.Draw(sheet)
    draw.rectangle((pad, pad, pad + thumb - 1, pad + thumb - 1), fill=LETTERBOX)
    draw.text(
        (pad + thumb // 2, pad + thumb // 2),
        "no samples",
        font=label_font(_font_size(thumb)),
        fill=DIM_TEXT,
        anchor="mm",
    )


def contact_sheet(
    dataset: Dataset,
    out: str | Path,
    n: int = 36,
    seed: int = 0,
    thumb: int = 256,
    apply_orientation: bool = True,
) -> Path:
    """A grid of n random samples, each fitted to thumb x thumb and labelled with size and key."""
    if n < 1:
        raise ValueError(f"contact sheet needs at least one sample, got n={n}")
    if thumb < 16:
        raise ValueError(f"thumbnail size {thumb} is too small to show anything (minimum 16)")
    keys = choose_keys(dataset.index, n, seed)
    (columns, rows), (cell_w, cell_h) = grid_shape(len(keys)), cell_size(thumb)
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), SHEET_BACKGROUND)
    if not keys:
        _draw_empty(sheet, thumb)
    for i, key in enumerate(keys):
        column, row = i % columns, i // columns
        _draw_cell(sheet, column * cell_w, row * cell_h, thumb, dataset.get(key), apply_orientation)
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG")
    return _write_png(out, buffer.getvalue())
