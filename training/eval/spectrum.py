"""How much detail a set of patches holds, measured as power per frequency.

The power spectrum of a grey patch says where its variance lies, in cycles per pixel: a render
that only interpolates its layout has the power of real patches at low frequencies and little
above them; real high-frequency detail shows as power in the upper octaves. Two measures:

- `band_power`: per patch, the power in each octave band of radial frequency (the radially
  averaged spectrum, summed over an octave): a set's mean band power against real patches' is
  the `spectrum-*` metrics' ratio per band.
- `tone_power`: per patch, the power at one frequency and direction (a texture's), summed over
  the few bins the window spreads it into: the controlled experiment's measure.

Power is normalised so that a sinusoid of amplitude A (in the image's own units) has A^2 / 2
in all, the variance it adds, whatever the patch size. Patches are tapered by a Hann window
before the FFT, so that the jump between opposite edges does not leak power into every band.

`upsample_lanczos` is the baseline the rendering is compared with: the canvas at R resampled
over a patch's window with a Lanczos-3 interpolator. Above R's Nyquist frequency (R / 2S cycles
per patch pixel) whatever it holds is the interpolator's imaging, not detail: `imaging_from`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..networks.filters import lanczos_rows

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601: the grey that "detail" is measured on


def grey(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 (n, 3, h, w) images -> float64 (n, h, w) grey levels in [0, 255]."""
    x = np.asarray(images, dtype=np.float64)
    return np.tensordot(np.asarray(LUMA), x, axes=([0], [1]))


def octave_edges(side: int) -> np.ndarray:
    """Band edges in cycles per pixel, octaves down from the Nyquist frequency 1/2 to the lowest
    frequency a side-pixel patch resolves (1 / side): [1/side, ..., 1/8, 1/4, 1/2]."""
    octaves = max(1, int(math.floor(math.log2(side / 2) + 1e-9)))
    return 0.5 / 2.0 ** np.arange(octaves, -1, -1)


def _hann(side: int) -> np.ndarray:
    return np.sin(np.pi * (np.arange(side) + 0.5) / side) ** 2


def power_spectrum(grey_patches: np.ndarray) -> np.ndarray:
    """(n, h, w) -> (n, h, w) power per FFT bin (numpy's bin order): a sinusoid of amplitude A
    sums to A^2 / 2 over its two bins and their leakage; the mean is removed first."""
    n, h, w = grey_patches.shape
    window = np.outer(_hann(h), _hann(w))
    x = grey_patches - grey_patches.mean(axis=(1, 2), keepdims=True)
    spectrum = np.abs(np.fft.fft2(x * window)) ** 2
    return spectrum / (h * w * np.sum(window**2))


def radial_frequency(h: int, w: int) -> np.ndarray:
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    return np.hypot(fx, fy)


def band_power(grey_patches: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(n, h, w) -> (n, bands): the power in each band [edges[k], edges[k+1]) of radial frequency
    (the last band includes 1/2; corners beyond it, seen along one diagonal only, are left out)."""
    power = power_spectrum(grey_patches)
    radius = radial_frequency(*grey_patches.shape[1:])
    bands = []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        last = k == len(edges) - 2
        inside = (radius >= lo) & ((radius <= hi) if last else (radius < hi))
        bands.append(power[:, inside].sum(axis=1))
    return np.stack(bands, axis=1)


def tone_power(grey_patches: np.ndarray, frequency: float, angle: float, reach: float = 2.0) -> np.ndarray:
    """(n, h, w) -> (n,): the power within `reach` bins of the frequency vector of `frequency`
    cycles per pixel in direction `angle` (radians from the u axis), and of its mirror image
    (a real sinusoid has both). The Hann window spreads a tone over about 2 bins each way."""
    n, h, w = grey_patches.shape
    power = power_spectrum(grey_patches)
    fy, fx = np.meshgrid(np.fft.fftfreq(h) * h, np.fft.fftfreq(w) * w, indexing="ij")  # in bins
    ux, uy = frequency * math.cos(angle) * w, frequency * math.sin(angle) * h
    near = (np.hypot(fx - ux, fy - uy) <= reach) | (np.hypot(fx + ux, fy + uy) <= reach)
    return power[:, near].sum(axis=1)


def imaging_from(resolution: int, scale: float) -> float:
    """The lowest frequency (cycles per patch pixel) that an image at R, brought to S, cannot hold."""
    return resolution / (2.0 * scale)


def upsample_lanczos(canvas: torch.Tensor, transform: torch.Tensor, p: int) -> torch.Tensor:
    """The p x p window T of a canvas image (b, c, R, R), interpolated with Lanczos-3: patch
    pixel centres go through T to canvas coordinates, then to canvas pixels (centre of pixel k at
    k + 0.5); outside the canvas the image is mirrored."""
    b, _, rows, cols = canvas.shape
    t = transform.double().to(canvas.device)
    centres = (torch.arange(p, device=canvas.device, dtype=torch.float64) + 0.5) / p - 0.5
    u = (t[:, 0, 0:1] * centres + t[:, 0, 2:3] + 0.5) * cols  # b x p, in canvas pixels
    v = (t[:, 1, 1:2] * centres + t[:, 1, 2:3] + 0.5) * rows
    one = torch.ones(b, device=canvas.device, dtype=torch.float64)
    along_u = lanczos_rows(u, one, cols).to(canvas.dtype)  # b x p x cols
    along_v = lanczos_rows(v, one, rows).to(canvas.dtype)
    return torch.einsum("biy,bcyx,bjx->bcij", along_v, canvas, along_u)
