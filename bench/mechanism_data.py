"""The controlled data of bench_mechanism.py: smooth layouts with a texture that only native pixels
show, and their texture-free twins.

Each image is `side` x `side` pixels: a smooth colour layout (a few random cosines per channel,
at most LAYOUT_CYCLES cycles across the canvas) plus, in the textured set, a grey sinusoid of
`freq` cycles per canvas in direction `angle` (degrees from the u axis, towards v), of amplitude
`amplitude` grey levels and a random phase per image. The twin set holds the same layouts
without it. Images are stored as PNG (lossless: the texture is exactly what was drawn) and
packed by `anyres-shards pack`, so the loader reads them as it reads any dataset. The R views
that stage 1 learns from are made by the loader itself, with its Lanczos low-pass.

A texture is invisible at R when its frequency along u or v exceeds R / 2 cycles per canvas by
enough for the low-pass to stop it (1.5x: about 1% of its amplitude gets through), and visible
at 2R when its frequency is below R.
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

BIN = Path(sys.executable).parent
LAYOUT_CYCLES = 3.0


@dataclass(frozen=True)
class Texture:
    freq: float = 26.0  # cycles per canvas (R = 32: Nyquist 16 at R, 32 at 2R)
    angle: float = 20.0  # degrees from the u axis
    amplitude: float = 20.0  # grey levels, of 255

    def cycles_per_pixel(self, scale: float) -> float:
        """The texture's frequency in a patch that renders the canvas at S pixels across."""
        return self.freq / scale

    @property
    def radians(self) -> float:
        return math.radians(self.angle)

    def check(self, resolution: int) -> None:
        """Refuse a texture that R already shows, or that 2R cannot (the bench would be void)."""
        fu, fv = abs(self.freq * math.cos(self.radians)), abs(self.freq * math.sin(self.radians))
        if max(fu, fv) < 1.25 * resolution / 2:
            raise SystemExit(f"texture at {self.freq:g} cycles/canvas, {self.angle:g} deg: its largest component "
                             f"{max(fu, fv):.1f} is within 1.25x of R's Nyquist {resolution / 2:g}; R would show it")
        if self.freq >= resolution:
            raise SystemExit(f"texture at {self.freq:g} cycles/canvas: 2R = {2 * resolution} pixels cannot show it")
        if not 0 < self.amplitude <= 60:
            raise SystemExit(f"--amplitude must be in (0, 60] grey levels, got {self.amplitude:g}")


def canvas_coordinates(side: int) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) of every pixel centre, in [-0.5, 0.5] (DESIGN.md 3)."""
    t = (np.arange(side) + 0.5) / side - 0.5
    v, u = np.meshgrid(t, t, indexing="ij")
    return u, v


def layout(rng: np.random.Generator, side: int) -> np.ndarray:
    """A smooth colour field in [40, 215]: per channel, four cosines of at most LAYOUT_CYCLES cycles."""
    u, v = canvas_coordinates(side)
    channels = []
    for _ in range(3):
        field = np.zeros((side, side))
        for _ in range(4):
            fu, fv = rng.uniform(-LAYOUT_CYCLES, LAYOUT_CYCLES, 2)
            field += rng.uniform(0.5, 1.0) * np.cos(2 * np.pi * (fu * u + fv * v) + rng.uniform(0, 2 * np.pi))
        channels.append(field)
    field = np.stack(channels, -1)
    field = (field - field.min()) / max(field.max() - field.min(), 1e-9)
    return 40 + 175 * field


def stripes(side: int, texture: Texture, phase: float) -> np.ndarray:
    u, v = canvas_coordinates(side)
    a = texture.radians
    return texture.amplitude * np.sin(2 * np.pi * texture.freq * (u * math.cos(a) + v * math.sin(a)) + phase)


def write_images(folder: Path, count: int, side: int, texture: Texture | None, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = layout(rng, side)
        phase = rng.uniform(0, 2 * np.pi)  # drawn in both sets: the twin's layouts stay the same
        if texture is not None:
            pixels = pixels + stripes(side, texture, phase)[..., None]
        Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8)).save(folder / f"img-{i:04d}.png")


def pack(images: Path, dataset: Path) -> Path:
    if not (dataset / "dataset.json").exists():
        subprocess.run([str(BIN / "anyres-shards"), "pack", str(images), str(dataset), "--shard-size", "64MB"],
                       check=True, stdout=subprocess.DEVNULL)
    return dataset


def make_sets(work: Path, count: int, side: int, texture: Texture, seed: int = 0) -> tuple[Path, Path]:
    """The textured dataset and its twin, under WORK (made once; a rerun reuses them)."""
    sets = []
    for name, tex in (("textured", texture), ("twin", None)):
        images = work / f"images-{name}"
        if not (work / f"data-{name}" / "dataset.json").exists():
            write_images(images, count, side, tex, seed)
        sets.append(pack(images, work / f"data-{name}"))
    return sets[0], sets[1]
