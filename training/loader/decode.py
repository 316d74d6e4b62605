"""From stored image bytes to patch pixels: a fast path, and the slow reference it must match.

Fast path: decode at the coarsest JPEG DCT reduction (1/2, 1/4, 1/8) that still gives at least
the window's pixel density, crop only the window (plus the resampling filter's reach) in stored
orientation, apply the EXIF orientation to that crop alone, and resample it to p x p with
Lanczos over the exact subpixel window (antialiased: the kernel widens with the reduction).

Reference (what the paper's code does): decode in full, orient the whole image, cut the canvas,
Lanczos-resize the whole canvas to S, crop the patch. Its resampling grid is aligned with the
window's phase so that both paths put every patch pixel at exactly the same native position;
they differ only in the low-pass filtering that the DCT reduction introduces.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from shards.format.limits import Limits
from shards.format.pixels import to_rgb
from shards.intake.probe import ProbeError, check_decode_cost

from ..geometry import PatchDraw

LANCZOS_SUPPORT = 3.0  # Pillow's Lanczos kernel reaches 3 input pixels per unit of scale
REDUCING_GAP = 3.0  # Pillow: from 3, "indistinguishable from fair resampling in most cases"
JPEG_REDUCTIONS = (8, 4, 2, 1)
TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height
ORIENT_OPS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# The same decode bounds as `verify --deep` (shards.format.limits, overridable by ANYRES_* variables).
_LIMITS = Limits.from_env()


class DecodeError(ValueError):
    """Stored bytes that do not decode to the image their metadata describes."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def stored_to_display(xs, ys, orientation: int, sw: float, sh: float):
    """Continuous coordinates in a stored image of size sw x sh -> after the EXIF orientation."""
    return {
        1: lambda: (xs, ys), 2: lambda: (sw - xs, ys), 3: lambda: (sw - xs, sh - ys), 4: lambda: (xs, sh - ys),
        5: lambda: (ys, xs), 6: lambda: (sh - ys, xs), 7: lambda: (sh - ys, sw - xs), 8: lambda: (ys, sw - xs),
    }[orientation]()


def display_to_stored(x, y, orientation: int, sw: float, sh: float):
    """The inverse of `stored_to_display`, still in terms of the stored size."""
    return {
        1: lambda: (x, y), 2: lambda: (sw - x, y), 3: lambda: (sw - x, sh - y), 4: lambda: (x, sh - y),
        5: lambda: (y, x), 6: lambda: (y, sh - x), 7: lambda: (sw - y, sh - x), 8: lambda: (sw - y, x),
    }[orientation]()


def _map_rect(rect, fn) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = rect
    (ax, ay), (bx, by) = fn(x0, y0), fn(x1, y1)
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def max_reduction(density: float, oversample: float = 1.0) -> int:
    """The largest power of two r with 1/r native pixels per pixel still >= density * oversample."""
    ratio = 1.0 / (density * oversample)
    return 1 if ratio < 2 else 2 ** int(math.floor(math.log2(ratio) + 1e-9))


@dataclass(frozen=True)
class Decoded:
    image: Image.Image  # stored orientation, at 1/reduction of the stored size, an 8-bit mode
    reduction: int
    orientation: int
    stored_size: tuple[int, int]  # native, before orientation

    @property
    def display_size(self) -> tuple[int, int]:
        sw, sh = self.stored_size
        return (sh, sw) if self.orientation in TRANSPOSED else (sw, sh)


def decode(data: bytes, orientation: int, reduction: int = 1) -> Decoded:
    """Open and decode, at 1/reduction (or the nearest finer JPEG reduction) for JPEGs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            check_decode_cost(image, data, _LIMITS.max_pixels, _LIMITS.max_jpeg_scans)
            stored = image.size
            actual = 1
            if reduction > 1 and image.format in ("JPEG", "MPO"):  # MPO: a JPEG with extra frames
                r = next(r for r in JPEG_REDUCTIONS if r <= reduction)
                drafted = image.draft(image.mode if image.mode in ("L", "CMYK") else "RGB",
                                      (stored[0] // r, stored[1] // r))
                if drafted is not None:
                    actual = round(stored[0] / drafted[1][2])
            image.load()
    except Image.DecompressionBombError as exc:  # over twice Pillow's MAX_IMAGE_PIXELS (~179 MP)
        raise DecodeError("too-large", str(exc)) from None
    except ProbeError as exc:  # over the read bounds (pixels, progressive scans): SECURITY.md
        raise DecodeError(exc.reason, exc.detail) from None
    except Exception as exc:  # every decoder failure is the sample's, never the loader's
        raise DecodeError("corrupt-image", f"{type(exc).__name__}: {exc}") from None
    return Decoded(image, actual, orientation, stored)


def mirrored(pixels: np.ndarray, draw: PatchDraw) -> np.ndarray:
    """The window's pixels as `draw` shows them: flipped left to right when it is mirrored.
    Pixel centres are symmetric about the window's centre, so the flip is exact (no resampling)."""
    return np.ascontiguousarray(pixels[:, ::-1]) if draw.mirror else pixels


def render_patch(decoded: Decoded, draw: PatchDraw, rgb: bool = True) -> np.ndarray:
    """The fast path: p x p x 3 uint8 pixels of `draw` from an image decoded at any reduction.

    With rgb=False the decoded mode is kept (a float "F" image stays float: coordinate maps)."""
    sw, sh = decoded.stored_size
    o, r = decoded.orientation, decoded.reduction
    x0, y0, w = draw.window()
    c = draw.canvas
    win = [v / r for v in _map_rect((x0, y0, x0 + w, y0 + w), lambda x, y: display_to_stored(x, y, o, sw, sh))]
    can = [v / r for v in _map_rect((c.ox, c.oy, c.ox + c.n, c.oy + c.n),
                                    lambda x, y: display_to_stored(x, y, o, sw, sh))]
    step = w / r / draw.size  # reduced pixels per patch pixel
    margin = math.ceil(LANCZOS_SUPPORT * max(step, 1.0)) + 1
    # The crop stops at the canvas edge, as the reference's canvas does, so both filters see the
    # same pixels there; a reduced pixel straddling that edge is kept.
    iw, ih = decoded.image.size
    box = (max(math.floor(win[0]) - margin, math.floor(can[0]), 0), max(math.floor(win[1]) - margin, math.floor(can[1]), 0),
           min(math.ceil(win[2]) + margin, math.ceil(can[2]), iw), min(math.ceil(win[3]) + margin, math.ceil(can[3]), ih))
    crop = decoded.image.crop(box)
    crop = to_rgb(crop) if rgb else crop
    cw, ch = crop.size
    local = (win[0] - box[0], win[1] - box[1], win[2] - box[0], win[3] - box[1])
    if o != 1:
        crop = crop.transpose(ORIENT_OPS[o])
        local = _map_rect(local, lambda x, y: stored_to_display(x, y, o, cw, ch))
    # Lanczos does the remaining reduction: Pillow stretches its kernel by the factor, so it cuts
    # off at the patch's Nyquist. A box reduction down to 2x (as this did before) aliased a tenth
    # of a texture at 1.5x that frequency into the view; Pillow's reducing gap keeps a box step
    # only where it leaves at least REDUCING_GAP to Lanczos, so it folds nothing below
    # REDUCING_GAP x the patch's Nyquist (and there, only content near the box's own rate, which
    # it attenuates). Fair Lanczos on a 12 MP decode shared by coarse patches cost 12% of the
    # patch stream's speed (docs/BENCHMARKS.md).
    lw, lh = crop.size
    local = (max(local[0], 0.0), max(local[1], 0.0), min(local[2], lw), min(local[3], lh))
    patch = crop.resize((draw.size, draw.size), Image.Resampling.LANCZOS, box=local, reducing_gap=REDUCING_GAP)
    return mirrored(np.asarray(patch), draw)


def oriented(decoded: Decoded) -> Image.Image:
    image = to_rgb(decoded.image)
    return image.transpose(ORIENT_OPS[decoded.orientation]) if decoded.orientation != 1 else image


def render_reference(image: Image.Image, draw: PatchDraw) -> np.ndarray:
    """The slow path on a fully decoded, oriented RGB image: the whole canvas resized, then cropped."""
    c = draw.canvas
    canvas = image.crop((c.ox, c.oy, c.ox + c.n, c.oy + c.n))
    x0, y0, _ = draw.window()
    step = c.n / draw.scale  # native pixels per pixel at resolution S
    starts, sizes, first = [], [], []
    for offset in (x0 - c.ox, y0 - c.oy):
        # The S-pixel grid across the canvas, shifted by less than one pixel so that the window
        # begins on a grid line: the crop below is then exactly the window.
        k = math.floor(offset / step + 1e-9)
        start = max(offset - k * step, 0.0)
        starts.append(start)
        sizes.append(math.floor((c.n - start) / step + 1e-9))
        first.append(k)
    box = (starts[0], starts[1], min(starts[0] + sizes[0] * step, c.n), min(starts[1] + sizes[1] * step, c.n))
    full = canvas.resize((sizes[0], sizes[1]), Image.Resampling.LANCZOS, box=box)
    p = draw.size
    return mirrored(np.asarray(full.crop((first[0], first[1], first[0] + p, first[1] + p))), draw)


def decode_reduction(draws: Sequence[PatchDraw], oversample: float = 1.0) -> int:
    """One decode serves several patches: the finest density any of them needs sets it."""
    return min(8, *(max_reduction(d.density(), oversample) for d in draws)) if draws else 8


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
