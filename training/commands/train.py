"""`anyres-train`: see what the loader feeds a GAN (`preview`), train it (`train`, its flags in
train_flags.py) and write a run's page (`report`).

A thin layer: flags -> frozen configs -> library call -> formatted result. `train` writes the run
report itself once the loop returns: the loop trains, the command shows. User errors end in one
line on stderr and exit code 2. Runs as `python -m training ...` too, e.g. under torchrun.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from plumbing.console import Parser, int_between, progress_bar, run_command
from plumbing.errors import DatasetError
from shards.format.index import IndexFilter

from ..loader.sampler import StreamConfig
from .train_flags import SCALE, SEED, add_train_parser, config_from_args

PROG = "anyres-train"


def add_stream_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("patches (DESIGN.md section 3)")
    group.add_argument("--stream", choices=("patch", "global"), default="patch",
                       help="patch: random windows at random scales; global: whole canvases at --size")
    group.add_argument("--size", type=int_between(8, 4096), default=256,
                       help="patch size p, or base resolution R (default 256)")
    group.add_argument("--s-min", type=SCALE, help="smallest scale S (default: --size)")
    group.add_argument("--s-max", type=SCALE, help="cap on S (default: each canvas's native side)")
    group.add_argument("--distribution", choices=("uniform", "log-uniform"), default="uniform",
                       help="how S is drawn in [S_min, S_max] (default uniform, the paper's)")
    group.add_argument("--upsample", action="store_true",
                       help="render canvases smaller than S_min at S_min instead of skipping them")
    group.add_argument("--mirror", action="store_true",
                       help="flip half the patches left to right, as training with --mirror does")
    group.add_argument("--patches-per-image", type=int_between(1, 1024),
                       help="patches drawn per decoded image (default 4 for patch, 1 for global)")
    group.add_argument("--min-side", type=int_between(1, 2**20),
                       help="only images whose shorter side is at least this (from the index, no tar opened)")
    group.add_argument("--weight", choices=("none", "area"), default="none",
                       help="area: draw patches from each image in proportion to its pixel count")


def stream_from_args(args: argparse.Namespace) -> StreamConfig:
    # A setting out of its domain (an S range below p) is a ConfigError: one line, exit 2.
    return StreamConfig(stream=args.stream, size=args.size, s_min=args.s_min, s_max=args.s_max,
                        distribution=args.distribution, upsample=args.upsample,
                        patches_per_image=args.patches_per_image, mirror=args.mirror)


def cmd_preview(args: argparse.Namespace) -> int:
    from ..loader.pipeline import LoaderConfig
    from ..loader.preview import collect, write_preview

    select = IndexFilter(min_side=args.min_side) if args.min_side else None
    config = LoaderConfig(data=args.data, stream=stream_from_args(args), batch_size=1, epoch_patches=args.n,
                          shuffle_buffer=args.shuffle_buffer, seed=args.seed, select=select,
                          weight=args.weight)
    with progress_bar("preview", args.n) as advance:
        result = collect(config, args.n, progress=advance)
    if len(result.keys) == 0:
        raise DatasetError(f"no patch could be drawn from {args.data}: {result.counts}")
    paths = write_preview(result, config, args.out)
    skipped = {k: v for k, v in result.counts.items() if k not in ("images", "patches")}
    why = f"; skipped {skipped}" if skipped else ""
    print(f"wrote {len(result.keys)} patches from {result.counts.get('images', 0)} image decodes{why}: "
          + ", ".join(str(p) for p in paths))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..run.run_report import write_report

    print(f"wrote {write_report(args.folder, args.data)}")
    return 0


def train(cfg):
    """What `anyres-train train` does with its config: the run, then RUN/report.html on rank 0
    unless cfg.report is off (a failure there costs one line, never the run)."""
    from ..run.loop import prepared
    from ..run.run_report import after_training

    with prepared(cfg) as run:
        record = run.run()
    if cfg.report:
        after_training(cfg.out, run.rank, run.dataset)
    return record


def cmd_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    record = train(cfg)
    if int(os.environ.get("RANK", 0)) == 0 and "tick" not in record:  # --resume of a finished run
        print(f"{args.out} is already trained to its --kimg {cfg.kimg:g}: nothing to do (a larger --kimg with "
              "--resume trains on)")
    elif int(os.environ.get("RANK", 0)) == 0:
        losses = ", ".join(f"{k} {record[k]:.3f}" for k in ("loss_G", "loss_D", "teacher") if record.get(k) is not None)
        losses += "".join(f", {k.removeprefix('metric/')} {v:.4g}" for k, v in record.items() if k.startswith("metric/"))
        print(f"trained to {record.get('kimg', 0):.2f} kimg ({record.get('images_per_sec', 0):.1f} images/s; {losses}): "
              f"{args.out}/checkpoint.pt")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Any-resolution GAN training on anyres datasets: scale-aware patches of "
        "native-resolution images. DATASET is a folder, an http(s):// URL prefix or an fsspec URL.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("preview", help="what training will see: contact sheet, scale/position plots, patches.npz")
    p.add_argument("--data", required=True, metavar="DATASET", help="the dataset to draw patches from")
    add_stream_flags(p)
    p.add_argument("--n", type=int_between(1, 4096), default=64, help="number of patches (default 64, at most 4096)")
    p.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    p.add_argument("--shuffle-buffer", type=int_between(0, 100_000), default=64,
                   help="shuffle buffer in patches (default 64)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the contact sheet, the plots and patches.npz")
    p.set_defaults(run=cmd_preview)
    add_train_parser(sub).set_defaults(run=cmd_train)

    p = sub.add_parser("report", help="one self-contained HTML page of a run: RUN/report.html",
                       description="Write RUN/report.html, a page that opens offline (no server, no script): the "
                       "dataset panel (size plot, contact sheet, licences, card), the config, training curves, sample "
                       "grids, generated images and zooms, metric tables and the loader's counters. Written at the "
                       "end of every training run too.")
    p.add_argument("folder", metavar="RUN", help="the run folder (as given to anyres-train train --out)")
    p.add_argument("--data", metavar="DATASET",
                   help="the dataset for the dataset panel (default: the run config's loader.data)")
    p.set_defaults(run=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
