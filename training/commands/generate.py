"""`anyres-generate`: images of any size from a snapshot, and zooms into them.

A thin layer: flags -> a GenerateConfig (generate/config.py) -> its files (generate/outputs.py)
-> a line per file. Every numeric flag has stated bounds (plumbing.console), combinations are
checked before the snapshot is read, and every user error ends in one line on stderr and exit
code 2 (DESIGN.md 5).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from plumbing.console import Parser, float_between, int_between, progress_bar, run_command
from plumbing.errors import ConfigError, DatasetError

from ..generate.images import EXTENSIONS
from ..generate.seeds import parse_seeds

PROG = "anyres-generate"
SIDE = int_between(8, 65_535)  # JPEG's limit per side; the run caps the pixel count too
COORD = float_between(-0.5, 0.5, low_open=False)

MEMORY = """memory: the device holds the activations of --batch tiles at a time (the default batch fills
half the free GPU memory, or 256 MiB on the CPU). A PNG is encoded as the rows arrive, so host memory
is the process with its network plus about 4 rows of tiles (4 x 3 x P x W bytes, W rounded up to
whole tiles) plus the batch's outputs (and on --device cpu its activations), whatever the height:
measured, an 8192 x 8192 PNG in tiles of 128 peaks 9 MiB above the same call at 1024 x 1024, not
the 192 MiB of its pixels. JPEG and WebP are encoded by Pillow from the whole image, 4 bytes a
pixel, and are capped at 2**28 pixels. Also runs as `python -m training generate ...`."""


def parse_point(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"not a point u,v: {text!r} (e.g. 0.1,-0.25)")
    return COORD(parts[0]), COORD(parts[1])


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, epilog=MEMORY, formatter_class=argparse.RawDescriptionHelpFormatter,
               description="Render images of any size from a trained generator (its G_ema), by tiles on "
               "exact grids that join without seams; or, with --zoom, a continuous zoom into a point. "
               "A W x H image renders the canvas at S = min(W, H) pixels across, centred, extended "
               "sideways or up and down beyond it (DESIGN.md 3).")
    p.add_argument("snapshot", metavar="SNAPSHOT", help="a run's checkpoint.pt or network-snapshot-*.pt")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (seedNNNN.png and seedNNNN.json), or an image file "
                   "(.png, .jpg, .webp) for a single seed")
    p.add_argument("--seeds", type=parse_seeds, default="0", help="e.g. 0-15,42 (default 0; at most 100000)")
    p.add_argument("--psi", type=float_between(0, 2, low_open=False), default=1.0,
                   help="truncation: 1 none (default), 0 the average image")
    size = p.add_argument_group("size (default: the generator's R, square)")
    size.add_argument("--size", type=SIDE, metavar="S", help="a square S x S image: the canvas at S")
    size.add_argument("--width", type=SIDE, metavar="W", help="8 to 65535; alone, a square")
    size.add_argument("--height", type=SIDE, metavar="H", help="8 to 65535; alone, a square")
    p.add_argument("--tile", type=int_between(2, 8192), metavar="P",
                   help="tile side, a multiple of the generator's size step (default: R, at least 256, at most "
                   "the image's longer side)")
    p.add_argument("--batch", type=int_between(1, 4096), metavar="N",
                   help="tiles (or zoom frames) per generator call (default: sized to the device's memory)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda where there is one")
    p.add_argument("--format", choices=("png", "jpg", "webp"),
                   help="default png, or the extension of --out; JPEG and WebP at quality 95")
    p.add_argument("--panorama", action="store_true",
                   help="a 360° model's whole turn (trained with --stage global-360): --width W pixels (a multiple "
                   "of the size step; default P x R, P = 360/fov frames) whose left and right edges join, "
                   "--height H (default one frame, W / P)")
    zoom = p.add_argument_group("zoom: frames, an animated WebP, and an MP4 where imageio-ffmpeg or av is installed")
    zoom.add_argument("--zoom", action="store_true", help="render a zoom from the whole canvas into --zoom-center")
    zoom.add_argument("--zoom-center", type=parse_point, metavar="U,V",
                      help="canvas coordinates in [-0.5, 0.5] (default 0,0)")
    zoom.add_argument("--zoom-to", type=float_between(8, 2.0**20), metavar="S",
                      help="the last frame's scale S (default 8 x the frame size)")
    zoom.add_argument("--frames", type=int_between(2, 3600), help="default 60")
    zoom.add_argument("--frame-size", type=int_between(8, 4096), metavar="P",
                      help="frame side, a multiple of the size step (default R)")
    zoom.add_argument("--fps", type=int_between(1, 120), help="default 30")
    p.set_defaults(run=cmd_generate)
    return p


ZOOM_ONLY = ("zoom_center", "zoom_to", "frames", "frame_size", "fps")


def config_from_args(args: argparse.Namespace):
    from ..generate.config import GenerateConfig, ZoomConfig

    if args.size is not None and (args.width is not None or args.height is not None):
        raise ConfigError("give --size, or --width and --height, not both")
    out = Path(args.out)
    fmt = EXTENSIONS.get(out.suffix.lower())
    if fmt and args.format and args.format != fmt:
        raise ConfigError(f"--format {args.format} contradicts --out {out.name}")
    if fmt and len(args.seeds) > 1:
        raise ConfigError(f"--out {out.name} is one image: give one seed, or a folder for {len(args.seeds)}")
    zoom = None
    if args.panorama and (args.zoom or args.size is not None):
        raise ConfigError(f"--panorama renders one turn --width wide: --{'zoom' if args.zoom else 'size'} does not apply")
    if args.zoom:
        given = [f for f in ("size", "width", "height", "tile") if getattr(args, f) is not None]
        if given:
            raise ConfigError(f"--zoom renders --frame-size frames: --{given[0]} does not apply")
        if fmt:
            raise ConfigError("--zoom writes frames, a WebP and an MP4: --out must be a folder")
        defaults = ZoomConfig()
        zoom = ZoomConfig(center=args.zoom_center or defaults.center, zoom_to=args.zoom_to,
                          frames=args.frames or defaults.frames, frame_size=args.frame_size,
                          fps=args.fps or defaults.fps)
    else:
        given = [f for f in ZOOM_ONLY if getattr(args, f) is not None]
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} applies to --zoom only")
    cfg = GenerateConfig(snapshot=args.snapshot, out=str(out), seeds=tuple(args.seeds), psi=args.psi,
                         width=args.size or args.width, height=args.size or args.height, tile=args.tile,
                         batch=args.batch, device=args.device or "cpu", format=fmt or args.format or "png", zoom=zoom,
                         panorama=args.panorama)
    cfg.check()
    return cfg


def check_writable(cfg) -> Path:
    """The folder the files go to, if it exists or can be made: refused before the snapshot is read."""
    out = Path(cfg.out)
    folder = out.parent if out.suffix.lower() in EXTENSIONS else out
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DatasetError(f"cannot write to {folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DatasetError(f"cannot write to {folder}: {existing} is not writable")
    return folder


def resolve_device(requested: str | None) -> str:
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: this machine has no CUDA device (or torch was built without CUDA)")
    return requested or ("cuda" if torch.cuda.is_available() else "cpu")


def cmd_generate(args: argparse.Namespace) -> int:
    import dataclasses

    from ..generate import memory
    from ..generate.outputs import generate_images, generate_zooms, load
    cfg = config_from_args(args)
    folder = check_writable(cfg)
    cfg = dataclasses.replace(cfg, device=resolve_device(args.device))
    g, about = load(cfg)
    cfg = cfg.resolve(g)
    folder.mkdir(parents=True, exist_ok=True)
    if cfg.zoom:
        with progress_bar("frames", cfg.zoom.frames * len(cfg.seeds)) as advance:
            generate_zooms(g, cfg, about, advance, print)
        return 0
    tiling = cfg.tiling(g)
    device = next(g.parameters()).device
    batch = cfg.batch or memory.default_batch(g.cfg, cfg.tile, device, tiling.count)
    cfg = dataclasses.replace(cfg, batch=batch)
    bound = memory.host_bound(g.cfg, cfg.width, cfg.tile, batch, device)
    what = f"360° panorama(s) of {g.cfg.turn:g} frames" if cfg.panorama else "image(s)"
    print(f"{len(cfg.seeds)} {what} of {cfg.width} x {cfg.height} (canvas at S = {tiling.scale:g}), "
          f"{tiling.count} tiles of {cfg.tile} px, {batch} per call on {device}; host memory beyond the "
          f"loaded network: about {memory.mib(bound)}" + ("" if cfg.format == "png" else
                                                            f" + {memory.mib(4 * cfg.width * cfg.height)} ({cfg.format})"))
    with progress_bar("tiles", tiling.count * len(cfg.seeds)) as advance:
        generate_images(g, cfg, about, advance, print)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
