"""What training sees of one stored image: the patches drawn from it, rendered.

The two streams the paper mixes differ only in their draw: `patch` renders a random window at a
random scale S in [S_min, S_max], `global` renders the whole canvas at the base resolution R
(S = p = R, so T is the identity). Both go through the same renderer and the same geometry.
A third, `global-360`, renders frames of 360° panoramas at R for a cylindrical model
(panorama_frames.py): a frame anywhere on the turn, across the seam as often as anywhere else.

Drawing several patches from one decode (`patches_per_image`) is what makes the loader fast on
real photos: most are progressive JPEGs, which cost about the same to decode at any reduction,
so the decode has to be shared. The shuffle buffer downstream spreads those patches apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from plumbing.errors import ConfigError
from shards.format.schema import SampleMeta

from ..geometry import PatchDraw, ScaleDistribution, draw_patch, scale_range, whole_canvas
from .decode import DecodeError, decode, decode_reduction, oriented, render_patch, render_reference
from .decode_cache import DecodeCache
from .panorama_frames import NotPanorama, check_aspect, draw_frame, frame_reduction, frame_width, render_frame

StreamKind = Literal["patch", "global", "global-360"]
# Four patches per decode meets the speed goal on real photos (docs/BENCHMARKS.md) at a small,
# measured cost in batch diversity; a square image's global views would all be the same, so one.
DEFAULT_PER_IMAGE = {"patch": 4, "global": 1, "global-360": 2}  # a panorama's frames do differ


@dataclass(frozen=True)
class StreamConfig:
    stream: StreamKind = "patch"
    size: int = 256  # p for the patch stream, the base resolution R for the global one
    s_min: float | None = None  # default: size (the global generator's resolution)
    s_max: float | None = None  # cap on S; S never exceeds the canvas side unless upsample
    distribution: ScaleDistribution = "uniform"  # the paper's; "log-uniform" favours small S
    upsample: bool = False  # render canvases smaller than S_min (or R) at S_min instead of skipping
    patches_per_image: int | None = None  # patches drawn per decode; default DEFAULT_PER_IMAGE[stream]
    oversample: float = 1.0  # decode at least this many times the density a patch needs
    centred: bool = False  # centred canvas and window: evaluation, not training
    reference: bool = False  # render with the slow paper-style path (benchmarks, tests)
    mirror: bool = False  # flip half the patches left to right (T follows: geometry.PatchDraw.mirror)
    fov: float = 60.0  # global-360: degrees of the turn one frame spans (the paper's default)

    def __post_init__(self) -> None:
        if self.stream not in ("patch", "global", "global-360"):
            raise ConfigError(f"stream must be 'patch', 'global' or 'global-360', got {self.stream!r}")
        if not (np.isfinite(self.fov) and 1 <= self.fov <= 360):
            raise ConfigError(f"fov must be between 1 and 360 degrees, got {self.fov}")
        if self.size < 1 or (self.patches_per_image is not None and self.patches_per_image < 1):
            raise ConfigError("size and patches_per_image must be at least 1")
        if self.oversample < 1:
            raise ConfigError(f"oversample must be at least 1, got {self.oversample}")
        if self.min_scale < self.size and self.stream == "patch":
            raise ConfigError(f"s_min {self.min_scale} is below the patch size {self.size}: the window would leave the canvas")
        if self.s_max is not None and self.s_max < self.min_scale:
            raise ConfigError(f"s_max {self.s_max} is below s_min {self.min_scale}")

    @property
    def per_image(self) -> int:
        return DEFAULT_PER_IMAGE[self.stream] if self.patches_per_image is None else self.patches_per_image

    @property
    def min_scale(self) -> float:
        return float(self.size if self.s_min is None else self.s_min)

    def usable_side(self) -> int:
        """The smallest canvas side this stream renders without upsampling."""
        return 1 if self.upsample else int(np.ceil(self.min_scale if self.stream == "patch" else self.size))


@dataclass(frozen=True)
class Patch:
    pixels: np.ndarray  # p x p x 3 uint8
    draw: PatchDraw
    key: str
    native_size: tuple[int, int]  # display W, H


class Skip(Exception):
    """A sample that yields no patch, with the reason it is counted under."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def draw_patches(width: int, height: int, config: StreamConfig, rng: np.random.Generator) -> list[PatchDraw]:
    """The draws for one image, decided from its metadata alone (before any decoding)."""
    draws = _draw_windows(width, height, config, rng)
    if not config.mirror:
        return draws  # no coin is tossed: the draws of a run without flips stay what they were
    # Each flip comes from the reader's seeded rng, like the window: deterministic, and replayed
    # exactly on resume.
    return [replace(d, mirror=True) if rng.random() < 0.5 else d for d in draws]


def _draw_windows(width: int, height: int, config: StreamConfig, rng: np.random.Generator) -> list[PatchDraw]:
    n = min(width, height)
    if config.stream == "global-360":
        try:
            check_aspect(width, height, config.fov)
        except NotPanorama as exc:
            raise Skip("not-panorama", str(exc)) from None
        if min(frame_width(width, config.fov), height) < config.size and not config.upsample:
            raise Skip("too-small", f"frames of {frame_width(width, config.fov):.0f} x {height} below R {config.size}")
        return [draw_frame(width, height, config.size, config.fov, rng, config.centred) for _ in range(config.per_image)]
    if config.stream == "global":
        if n < config.size and not config.upsample:
            raise Skip("too-small", f"canvas {n} below the base resolution {config.size}")
        return [whole_canvas(width, height, config.size, rng, config.centred) for _ in range(config.per_image)]
    if scale_range(n, config.min_scale, config.s_max, config.upsample) is None:
        raise Skip("too-small", f"canvas {n} below s_min {config.min_scale:g}")
    draws = []
    for _ in range(config.per_image):
        draw = draw_patch(width, height, config.size, rng, config.min_scale, config.s_max,
                          config.distribution, config.upsample, config.centred)
        assert draw is not None  # the range was checked above
        draws.append(draw)
    return draws


def render_sample(meta: SampleMeta, data: bytes, config: StreamConfig, rng: np.random.Generator,
                  cache: DecodeCache | None = None) -> list[Patch]:
    """All patches of one sample; raises Skip with a reason when there are none. With a cache,
    the decode may be one kept from an earlier epoch (the same pixels: not counted, so that a
    resumed run's counters, which start with an empty cache, stay the uninterrupted run's)."""
    draws = draw_patches(meta.width, meta.height, config, rng)
    if config.stream == "global-360":
        reduction = frame_reduction(meta.width, meta.height, config.size, config.fov, config.oversample)
    else:
        reduction = 1 if config.reference else decode_reduction(draws, config.oversample)
    try:
        if cache is None:
            decoded = decode(data, meta.orientation, reduction)
        else:
            decoded = cache.get(meta.key, reduction, lambda: decode(data, meta.orientation, reduction))
    except DecodeError as exc:
        raise Skip(exc.reason, str(exc)) from None
    native = (meta.width, meta.height)
    if decoded.display_size != native:
        raise Skip("size-mismatch", f"decodes to {decoded.display_size}, metadata says {native}")
    try:
        if config.stream == "global-360":
            image = np.asarray(oriented(decoded))  # once for all the turn's frames
            pixels = [render_frame(decoded, image, d, config.fov) for d in draws]
        elif config.reference:
            full = oriented(decoded)
            pixels = [render_reference(full, d) for d in draws]
        else:
            pixels = [render_patch(decoded, d) for d in draws]
    except (OSError, ValueError) as exc:  # a stream that decoded its header but not its pixels
        raise Skip("corrupt-image", f"{type(exc).__name__}: {exc}") from None
    return [Patch(px, d, meta.key, native) for px, d in zip(pixels, draws)]
