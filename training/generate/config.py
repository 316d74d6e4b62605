"""A generation's config: built by anyres-generate from flags and checked where no network is
needed (sizes, formats); what depends on the network (the size step, the defaults R and the
tile) is resolved once the snapshot is loaded (GenerateConfig.resolve), and the resolved config is written
into every sidecar.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from plumbing.errors import ConfigError

from ..networks.generator import Generator
from . import memory
from .panorama_turn import turn_tiling, turn_width
from .tiles import Tiling

MAX_SIDE = 65_535  # pixels per side (JPEG's limit; PNGs could be larger, but nobody views those)
MAX_PIXELS = 2**31  # pixels per image: 6 GiB of PNG rows at worst, streamed
MAX_PILLOW_PIXELS = 2**28  # JPEG and WebP are assembled whole in memory: 1 GiB at 4 bytes a pixel
MAX_ZOOM_BYTES = 2**30  # the zoom's frames stay in memory for the WebP and the MP4


@dataclass(frozen=True)
class ZoomConfig:
    center: tuple[float, float] = (0.0, 0.0)  # canvas coordinates of the point zoomed into
    zoom_to: float | None = None  # final scale S (default 8 x the frame size)
    frames: int = 60
    frame_size: int | None = None  # P (default the generator's R)
    fps: int = 30


@dataclass(frozen=True)
class GenerateConfig:
    snapshot: str
    out: str  # a folder, or an image file for a single seed
    seeds: tuple[int, ...] = (0,)
    psi: float = 1.0
    width: int | None = None  # default the generator's R
    height: int | None = None
    tile: int | None = None  # default memory.default_tile
    batch: int | None = None  # tiles (or zoom frames) per generator call; default memory.default_batch
    device: str = "cpu"
    format: str = "png"
    zoom: ZoomConfig | None = None
    panorama: bool = False  # a 360° model's whole turn, W wide: the canvas at S = W / P (tiles.py)

    def check(self) -> None:
        """What can be checked before any network is loaded."""
        for side in (self.width, self.height):
            if side is not None and side > MAX_SIDE:
                raise ConfigError(f"image sides are at most {MAX_SIDE} pixels, got {side}")
        if self.width and self.height:
            pixels = self.width * self.height
            limit = MAX_PIXELS if self.format == "png" else MAX_PILLOW_PIXELS
            if pixels > limit:
                why = "" if self.format == "png" else f" in {self.format} (assembled in memory; png streams)"
                raise ConfigError(f"{self.width} x {self.height} is more than {limit} pixels{why}")
            if self.format == "webp" and max(self.width, self.height) > 16_383:
                raise ConfigError("WebP images are at most 16383 pixels a side: use png or jpg")
        if self.zoom and self.zoom.frame_size and self.zoom.frames * 3 * self.zoom.frame_size ** 2 > MAX_ZOOM_BYTES:
            raise ConfigError(f"{self.zoom.frames} frames of {self.zoom.frame_size} px exceed "
                              f"{MAX_ZOOM_BYTES >> 20} MiB: fewer frames, or a smaller --frame-size")

    def resolve(self, g: Generator) -> GenerateConfig:
        """Defaults from the network, and the checks that need its size step."""
        cfg, step = g.cfg, g.cfg.size_step()
        if self.panorama:
            return self._resolve_panorama(g)
        if self.zoom is None:
            width = self.width or (self.height or cfg.resolution)
            height = self.height or width
            tile = self.tile or memory.default_tile(cfg, width, height)
            _multiple(tile, step, "--tile")
            resolved = dataclasses.replace(self, width=width, height=height, tile=tile)
            resolved.check()
            return resolved
        size = self.zoom.frame_size or cfg.resolution
        _multiple(size, step, "--frame-size")
        zoom_to = self.zoom.zoom_to or 8.0 * size
        if zoom_to < size:
            raise ConfigError(f"--zoom-to {zoom_to:g} is below the frame size {size}: the first frame already "
                              "shows the whole canvas")
        resolved = dataclasses.replace(self, zoom=dataclasses.replace(self.zoom, frame_size=size, zoom_to=zoom_to))
        resolved.check()
        return resolved


    def _resolve_panorama(self, g: Generator) -> GenerateConfig:
        cfg, step, turn = g.cfg, g.cfg.size_step(), g.cfg.turn
        if turn is None:
            raise ConfigError("--panorama needs a 360° model (trained with --stage global-360); this snapshot's "
                              "generator renders a plane")
        # The width is one turn: a multiple of the step, so that the plane's render repeats after
        # exactly W pixels (every layer's lattice spacing divides it) and the edges join exactly.
        width = self.width or turn_width(cfg, self.height or cfg.resolution)
        _multiple(width, step, "--width")
        height = self.height or max(8, round(width / turn))
        tile = self.tile or memory.default_tile(cfg, width, height)
        _multiple(tile, step, "--tile")
        resolved = dataclasses.replace(self, width=width, height=height, tile=tile)
        resolved.check()
        return resolved

    def tiling(self, g: Generator) -> Tiling:
        """The tiles of a resolved config's image; a panorama's canvas is W / P wide."""
        if self.panorama:
            return turn_tiling(g.cfg, self.width, self.height, self.tile)
        return Tiling(self.width, self.height, self.tile)


def _multiple(value: int, step: int, flag: str) -> None:
    if value % step:
        raise ConfigError(f"{flag} {value} is not a multiple of this generator's size step {step} "
                          f"(twice its input spacing): try {step * max(1, round(value / step))}")
