"""Does one image sit inside another? The check behind crop- and overlay-robust dedup.

A candidate pair comes with a hypothesis: the inner image's frame as a box in the outer image's
frame (coordinates in [0, 1]). The pixel scale is uniform, so the box's height follows from its
width and the two images' aspects; a few widths around the hypothesis are tried, and at each
the offset is found by phase correlation between the inner thumbnail and the outer thumbnail
resampled over the box. The pair is accepted when the best alignment keeps the inner frame
inside the outer one (a crop, not a shifted view of a wider scene) and the aligned thumbnails
agree, twice over: their correlation, after the pixels that differ most (an overlay) are set
aside, reaches the threshold; and three of their four quadrants agree on their own. The second
test is what keeps two different near-featureless images apart when they carry the same
watermark: the shared box alone makes their whole-frame correlation high (0.90 for a star field
against a brick wall in the calibration), while their quadrants do not agree at all (0.03).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .image_signature import THUMB_SIDE

DEFAULT_THRESHOLD = 0.85  # trimmed correlation of aligned thumbnails; bench/calibrate_dedup.py
QUADRANT_FLOOR = 0.4  # three quadrants at least this correlated: true copies 0.63 and up, calibrated
TRIM = 0.12  # fraction of pixels set aside as the worst-matching: room for an overlay
INSIDE = 0.035  # how far (in frames) the inner frame may seem to stick out: about one thumbnail pixel
SCALES = np.linspace(-0.04, 0.04, 5)  # relative widths tried around the hypothesis
_HANN = np.hanning(THUMB_SIDE + 2)[1:-1]
_WINDOW = np.outer(_HANN, _HANN)  # tapers the borders, whose wrap-around would fake a shift


@dataclass(frozen=True)
class Box:
    """The inner frame in the outer one: left, top, width, height, in outer frames."""

    x: float
    y: float
    w: float
    h: float

    def inside(self, slack: float = INSIDE) -> bool:
        return (self.x >= -slack and self.y >= -slack and self.x + self.w <= 1 + slack
                and self.y + self.h <= 1 + slack)

    def margins(self) -> tuple[float, float, float, float]:
        """Left, top, right and bottom crops, as fractions of the outer frame."""
        return self.x, self.y, 1 - self.x - self.w, 1 - self.y - self.h


@dataclass(frozen=True)
class Alignment:
    box: Box
    score: float  # trimmed correlation over the whole thumbnail
    quadrants: float = 1.0  # the second-lowest correlation of the four quadrants


def resample(outer: np.ndarray, box: Box) -> np.ndarray:
    """The outer thumbnail over `box`, at the inner thumbnail's grid (pixel centres mapped)."""
    n = THUMB_SIDE
    m = np.array([[box.w, 0, n * box.x + 0.5 * box.w - 0.5],
                  [0, box.h, n * box.y + 0.5 * box.h - 0.5]], dtype=np.float64)
    return cv2.warpAffine(outer, m, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def spectrum(image: np.ndarray) -> np.ndarray:
    """The windowed image's 2-D real FFT, which `phase_shift` compares."""
    return np.fft.rfft2(image * _WINDOW)


def phase_shift(a: np.ndarray, b_spectrum: np.ndarray) -> tuple[float, float]:
    """(dx, dy) such that b(x) ~ a(x - (dx, dy)), to a fraction of a pixel; b is given by its
    `spectrum`, computed once for every scale tried. Written out in numpy: cv2.phaseCorrelate
    with a window gave different subpixel answers for the same input from call to call (opencv
    5.0.0), and dedup must be reproducible."""
    cross = b_spectrum * np.conj(spectrum(a))
    surface = np.fft.irfft2(cross / np.maximum(np.abs(cross), 1e-9), s=a.shape)
    n = surface.shape[0]
    py, px = np.unravel_index(int(np.argmax(surface)), surface.shape)
    dy = py + _subpixel(surface[(py - 1) % n, px], surface[py, px], surface[(py + 1) % n, px])
    dx = px + _subpixel(surface[py, (px - 1) % n], surface[py, px], surface[py, (px + 1) % n])
    # shifts past half the side are negative ones, wrapped
    return (dx - n if dx > n / 2 else dx), (dy - n if dy > n / 2 else dy)


def _subpixel(before: float, peak: float, after: float) -> float:
    """The peak's offset from its sample, for the sinc-shaped peak of a phase correlation
    (Foroosh, Zerubia and Berthod, 2002): from the larger neighbour's share."""
    if after >= before:
        return after / (after + peak) if after > 0 else 0.0
    return -before / (before + peak) if before > 0 else 0.0


def trimmed_correlation(a: np.ndarray, b: np.ndarray, trim: float = TRIM) -> float:
    """Correlation of two images over the pixels where they agree best (all but `trim`)."""
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    sa, sb = a.std(), b.std()
    if sa < 1e-3 or sb < 1e-3:  # a flat thumbnail says nothing: only equal flats agree
        return 1.0 if abs(float(a.mean()) - float(b.mean())) < 2 and sa < 1e-3 and sb < 1e-3 else 0.0
    za, zb = (a - a.mean()) / sa, (b - b.mean()) / sb
    keep = int(round(za.size * (1 - trim)))
    best = np.argpartition(np.abs(za - zb), keep - 1)[:keep]
    return _correlation(za[best], zb[best])


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / denominator if denominator > 1e-12 else 0.0


def quadrant_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """The second-lowest correlation of the four quadrants: one quadrant may hold an overlay."""
    half = a.shape[0] // 2
    found = []
    for y in (0, half):
        for x in (0, half):
            qa, qb = a[y:y + half, x:x + half].ravel(), b[y:y + half, x:x + half].ravel()
            found.append(_correlation(qa.astype(np.float64), qb.astype(np.float64)))
    return sorted(found)[1]


def align(outer: np.ndarray, inner: np.ndarray, hypothesis: Box, aspect: float) -> Alignment:
    """The best alignment of `inner` inside `outer` near `hypothesis`. `aspect` is the box's
    height over its width, in frames, for a uniform pixel scale: (inner h / outer h) / (inner w /
    outer w), from the two images' sizes."""
    outer = outer.astype(np.float32)
    inner = inner.astype(np.float32)
    target = spectrum(inner)
    tried = []
    for step in SCALES:
        w = hypothesis.w * (1 + step)
        h = w * aspect
        # keep the hypothesis's centre while the width changes, then move by the phase shift
        box = _moved(outer, Box(hypothesis.x + (hypothesis.w - w) / 2, hypothesis.y + (hypothesis.h - h) / 2, w, h),
                     target)
        tried.append(Alignment(box, trimmed_correlation(resample(outer, box), inner)))
    best = max(tried, key=lambda found: found.score)  # the first of equals: deterministic
    settled = _moved(outer, best.box, target)  # a second round at the best width settles the subpixel offset
    score = trimmed_correlation(resample(outer, settled), inner)
    if score < best.score:
        settled, score = best.box, best.score
    return Alignment(settled, score, quadrant_agreement(resample(outer, settled), inner))


def _moved(outer: np.ndarray, box: Box, target: np.ndarray) -> Box:
    # No bound on the shift: a shifted view must be allowed to slide out of the frame and fail.
    dx, dy = phase_shift(resample(outer, box), target)
    n = THUMB_SIDE
    return Box(box.x - box.w * dx / n, box.y - box.h * dy / n, box.w, box.h)


def accept(alignment: Alignment, threshold: float) -> bool:
    return (alignment.score >= threshold and alignment.quadrants >= QUADRANT_FLOOR
            and alignment.box.inside())
