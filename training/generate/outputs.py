"""The files of a generation: the snapshot's generator loaded, then every seed's image, by tiles,
or its zoom (frames, WebP and MP4), each with a JSON sidecar saying how it was made.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint
from ..networks.generator import Generator
from . import memory
from .config import GenerateConfig
from .images import EXTENSIONS, FORMATS, anyres_version, file_digest, write_image, write_sidecar
from .seeds import latent
from .tiles import render_rows
from .zoom import render_frames, video_backend, write_mp4, write_webp, zoom_path


def load(cfg: GenerateConfig) -> tuple[Generator, dict]:
    """The snapshot's G_ema on the config's device, and what the sidecars say about it."""
    g, saved = checkpoint.load_generator(cfg.snapshot, "G_ema", "snapshot", with_state=True)
    about = {"snapshot": {**file_digest(Path(cfg.snapshot)), "step": saved.get("step")},
             "generator": dataclasses.asdict(g.cfg), "anyres": anyres_version()}
    return g.to(torch.device(cfg.device)), about


def mapped(g: Generator, seed: int, psi: float) -> torch.Tensor:
    device = next(g.parameters()).device
    z = torch.from_numpy(latent(seed, g.cfg.z_dim)).float().to(device)
    with torch.no_grad():
        return g.mapping(z, psi)


def image_path(cfg: GenerateConfig, seed: int) -> Path:
    out = Path(cfg.out)
    return out if out.suffix.lower() in EXTENSIONS else out / f"seed{seed:04d}{FORMATS[cfg.format]}"


def generate_images(g: Generator, cfg: GenerateConfig, about: dict, progress: Callable[[int], None],
                    say: Callable[[str], None]) -> list[Path]:
    tiling = cfg.tiling(g)
    device = next(g.parameters()).device
    batch = cfg.batch or memory.default_batch(g.cfg, cfg.tile, device, tiling.count)
    panorama = {"fov": g.cfg.fov, "turn": g.cfg.turn} if cfg.panorama else None
    written = []
    for seed in cfg.seeds:
        path = image_path(cfg, seed)
        start = time.perf_counter()
        write_image(path, cfg.format, cfg.width, cfg.height,
                    render_rows(g, mapped(g, seed, cfg.psi), tiling, batch, progress))
        record = {"seed": seed, "psi": cfg.psi, "width": cfg.width, "height": cfg.height, "scale": tiling.scale,
                  "canvas": tiling.extent(), "panorama": panorama, "tile": cfg.tile, "batch": batch, "tiles": tiling.count,
                  "device": str(device), "format": cfg.format, "seconds": round(time.perf_counter() - start, 3),
                  **about, "config": dataclasses.asdict(cfg)}
        write_sidecar(path.with_suffix(".json"), record)
        say(f"seed {seed}: {path} ({cfg.width} x {cfg.height}, {tiling.count} tiles of {cfg.tile} px, "
            f"{record['seconds']:.1f} s)")
        written.append(path)
    return written


def generate_zooms(g: Generator, cfg: GenerateConfig, about: dict, progress: Callable[[int], None],
                   say: Callable[[str], None]) -> list[Path]:
    from PIL import Image

    from plumbing.atomic import atomic_write_png

    z = cfg.zoom
    device = next(g.parameters()).device
    path = zoom_path(z.frames, z.frame_size, z.zoom_to, *z.center)
    batch = cfg.batch or memory.default_batch(g.cfg, z.frame_size, device, z.frames)
    backend = video_backend()
    written = []
    for seed in cfg.seeds:
        folder = Path(cfg.out) / f"zoom-seed{seed:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        frames: list[np.ndarray] = []
        for k, frame in enumerate(render_frames(g, mapped(g, seed, cfg.psi), path, z.frame_size, batch, progress)):
            atomic_write_png(folder / f"frame-{k:05d}.png", Image.fromarray(frame))
            frames.append(frame)
        webp = folder.with_suffix(".webp")
        write_webp(webp, frames, z.fps)
        mp4 = folder.with_suffix(".mp4")
        why = write_mp4(mp4, frames, z.fps, backend) if backend else \
            "no video writer installed (pip install imageio-ffmpeg, or av)"
        record = {"seed": seed, "psi": cfg.psi, "frame_size": z.frame_size, "fps": z.fps,
                  "frames": [dataclasses.asdict(f) for f in path], "webp": webp.name,
                  "mp4": None if why else mp4.name, "device": str(device), "batch": batch,
                  **about, "config": dataclasses.asdict(cfg)}
        write_sidecar(folder.with_suffix(".json"), record)
        say(f"seed {seed}: {z.frames} frames in {folder}/, {webp}" + (f", {mp4}" if not why else f"; no MP4: {why}"))
        written.append(webp)
    return written
