"""Frames of 360° panoramas: what stage global-360 trains on.

A stored image is taken as one full turn of a cylindrical panorama: its width spans 360°, and
its height one frame. A frame is `fov` degrees of it, so a turn holds P = 360 / fov frames and
a frame is W / P native pixels wide and H high; it is rendered at R x R. Its centre lies
anywhere on the turn, so frames that cross the image's left and right edges (the seam) are
drawn as often as any other, their pixels wrapping around. In canvas units a frame is one
canvas wide, and its centre cu runs over [-P/2, P/2), the generator's cylinder (generator.py).

An image whose aspect W / H is far from P would be stretched out of shape to span a turn; it is
skipped and counted as `not-panorama` instead (within a factor PANORAMA_SLACK it is resampled to
fit, as a slightly mis-stitched panorama is).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..geometry import Canvas, PatchDraw
from .decode import LANCZOS_SUPPORT, Decoded, max_reduction, mirrored

PANORAMA_SLACK = 1.5  # W / H may differ from P by this factor either way


class NotPanorama(ValueError):
    """An image that is not one turn of P frames (its aspect is too far from P)."""


def turn_of(fov: float) -> float:
    return 360.0 / fov


def frame_width(width: int, fov: float) -> float:
    """Native pixels across one frame."""
    return width / turn_of(fov)


def aspect_bounds(fov: float) -> tuple[float, float]:
    """The widths over heights an image may have to be taken as one turn of 360/fov frames."""
    turn = turn_of(fov)
    return turn / PANORAMA_SLACK, turn * PANORAMA_SLACK


def check_aspect(width: int, height: int, fov: float) -> None:
    (low, high), aspect = aspect_bounds(fov), width / height
    if not low <= aspect <= high:
        raise NotPanorama(f"aspect {aspect:.2f}; a turn of {turn_of(fov):g} frames of {fov:g}° needs "
                          f"{low:.2f} to {high:.2f}")


def draw_frame(width: int, height: int, size: int, fov: float, rng: np.random.Generator,
               centred: bool = False) -> PatchDraw:
    """A frame centred anywhere on the turn (at its middle when `centred`), rendered at size x size.
    The canvas box records where it starts in native pixels (ox, modulo the width) and its height."""
    fw = frame_width(width, fov)
    xc = width / 2 if centred else float(rng.uniform(0, width))
    cu = xc / fw - turn_of(fov) / 2
    return PatchDraw(Canvas(int(math.floor(xc - fw / 2)) % width, 0, height), float(size), cu, 0.0, size)


def frame_reduction(width: int, height: int, size: int, fov: float, oversample: float = 1.0) -> int:
    """The coarsest decode that still gives the frame at least its pixel density on both axes."""
    density = size / min(frame_width(width, fov), height)
    return max_reduction(density, oversample)


def render_frame(decoded: Decoded, image: np.ndarray, draw: PatchDraw, fov: float) -> np.ndarray:
    """size x size x 3 uint8 pixels of a frame, its columns wrapping around the seam. `image` is
    `decoded` oriented and in RGB (np.asarray(oriented(decoded))), made once for all its frames."""
    ih, iw = image.shape[:2]
    width, _ = decoded.display_size
    sx = iw / width  # decoded pixels per native pixel (1 / the JPEG reduction, up to rounding)
    fw = frame_width(width, fov) * sx
    xc = (draw.cu + turn_of(fov) / 2) * fw  # the frame's centre, in decoded pixels
    step = fw / draw.size
    margin = math.ceil(LANCZOS_SUPPORT * max(step, 1.0)) + 1
    first = math.floor(xc - fw / 2) - margin
    columns = np.arange(first, math.ceil(xc + fw / 2) + margin) % iw  # wrapped: the seam is no edge
    strip = Image.fromarray(np.ascontiguousarray(image[:, columns]))
    box = (xc - fw / 2 - first, 0.0, xc + fw / 2 - first, float(ih))
    pixels = np.asarray(strip.resize((draw.size, draw.size), Image.Resampling.LANCZOS, box=box))
    return mirrored(pixels, draw)
