"""`anyres-eval`: score a snapshot, or every snapshot of a run, with the paper's metrics.

A thin layer: flags (bounded, plumbing.console) -> EvalConfig -> eval.metrics.Evaluator -> rows
appended to the run folder's metrics.jsonl and shown as a table. User errors (a missing or
garbage snapshot or dataset, an unknown metric, a size the generator cannot render, a feature
file that is not the FID Inception's plain state dict, or is a program) end in one line and exit
code 2.

Several devices: under torchrun, one process per device (`--device cuda` takes cuda:LOCAL_RANK;
on the CPU the processes talk over gloo),

    torchrun --standalone --nproc-per-node 4 -m training.commands.eval RUN --data DATASET --device cuda
    torchrun --standalone --nproc-per-node 4 "$(which anyres-eval)" RUN --data DATASET --device cuda

(write -n N there: torchrun's own parser refuses --n). Each rank makes a block of every set
(eval/ranks.py), and the numbers are those of one process with the same flags. Rank 0 alone
reads and writes the cache, writes metrics.jsonl and prints; a user error on any rank ends every
rank with its one line and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import textwrap
from collections.abc import Callable
from functools import partial
from pathlib import Path

from plumbing.console import Parser, int_between, print_report, progress_bar, run_command

from ..errors import TrainingError
from .train_flags import SCALE, SEED, metrics_arg

PROG = "anyres-eval"
SNAPSHOT = re.compile(r"network-snapshot-(\d+)(?:\.(\d+))?\.pt")
DEVICES = """several devices: one process per device under torchrun, e.g. 4 GPUs of one machine:
  torchrun --standalone --nproc-per-node 4 -m training.commands.eval RUN --data DATASET --device cuda
  torchrun --standalone --nproc-per-node 4 "$(which anyres-eval)" RUN --data DATASET --device cuda
Each process takes cuda:LOCAL_RANK (on --device cpu, processes talk over gloo) and makes its share
of every set; the numbers are those of one process with the same flags (--seed, --n, --batch).
Rank 0 alone prints, and reads and writes the cache and metrics.jsonl. Write -n N, not --n N,
after torchrun: its own parser refuses --n (it could mean --nnodes or --nproc-per-node)."""


def snapshot_kimg(path: Path) -> float:
    m = SNAPSHOT.fullmatch(path.name)
    return int(m.group(1)) + int(m.group(2) or 0) / 1000 if m else float("nan")


def targets(target: Path) -> list[Path]:
    """A snapshot or checkpoint file, or every network-snapshot-*.pt of a run folder by kimg."""
    if target.is_dir():
        found = sorted((p for p in target.glob("network-snapshot-*.pt") if SNAPSHOT.fullmatch(p.name)),
                       key=snapshot_kimg)
        if not found:
            raise TrainingError(f"run folder {target} holds no network-snapshot-*.pt")
        return found
    if not target.exists():
        raise TrainingError(f"snapshot {target} does not exist")
    return [target]


def load(path: Path):
    """The frozen G_ema of a snapshot or checkpoint, its saved config, and its kimg."""
    from .. import checkpoint

    g, saved = checkpoint.load_generator(path, "G_ema", "snapshot", with_state=True)
    config = saved["config"]
    batch = (config.get("loader") or {}).get("batch_size")
    step = saved.get("step")
    kimg = step * batch / 1000 if isinstance(step, int) and isinstance(batch, int) else snapshot_kimg(path)
    return g, config, kimg


class Bars:
    """One progress bar at a time (rich allows a single live display): a new one ends the last."""

    def __init__(self) -> None:
        self.stack = contextlib.ExitStack()

    def __call__(self, label: str, total: int):
        self.stack.close()
        return self.stack.enter_context(progress_bar(label, total))

    def close(self) -> None:
        self.stack.close()


def evaluate(args: argparse.Namespace, world) -> Callable[[], None]:
    """Every rank's part of a call; returns what rank 0 shows last (the others: nothing)."""
    from ..eval import results
    from ..eval.cache import StatsCache, default_dir
    from ..eval.features import load_features
    from ..eval.metrics import EvalConfig, Evaluator
    from ..eval.names import METRICS
    from ..eval.ranks import Ranks
    from ..eval.spectrum_plot import SPECTRUM_PLOT, plot_spectra
    from ..run.validate import open_dataset

    ranks = Ranks(world.rank, world.size)
    lead = world.rank == 0

    def setup():
        config = EvalConfig(metrics=args.metrics, n=args.n, seed=args.seed, size=args.size, batch=args.batch,
                            max_tile=args.tile, s_min=args.s_min, s_max=args.s_max, kid_subsets=args.kid_subsets)
        paths = targets(args.target)
        dataset = open_dataset(args.data, "--data dataset")
        first = load(paths[0])  # a garbage snapshot stops here, before the feature network is built
        features = load_features(args.inception, world.device, args.feature_side)
        return config, paths, dataset, first, features

    # Every rank checks the call itself, and all of them stop if any one finds it wrong.
    config, paths, dataset, first, features = ranks.together(setup)
    cache = StatsCache(None if args.no_cache else (args.cache or default_dir()))
    bars = Bars() if lead else None  # the other ranks stay quiet
    evaluator = Evaluator(dataset, features, config, cache, progress=bars, ranks=ranks)
    rows = []
    try:
        for i, path in enumerate(paths):
            g, run_config, kimg = first if i == 0 else ranks.together(partial(load, path))
            scored = evaluator.score(g.to(world.device), run_config)
            rows += [{"snapshot": str(path), "kimg": kimg, **r} for r in scored]
    finally:
        if bars is not None:
            bars.close()
    out = args.out or (paths[0].parent if paths[0].is_file() else args.target)

    def write() -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        results.append_jsonl(out / results.METRICS_FILE, rows)
        plots = (results.plot_bins(rows, out / results.BINS_PLOT), plot_spectra(rows, out / SPECTRUM_PLOT))
        return [p for p in plots if p is not None]

    plots = ranks.first(write)  # once, by rank 0; an unwritable folder stops every rank

    def show() -> None:
        # The first FID or KID ranks the snapshots (lower is better); the proxy and the bins do not.
        rank_by = next((m for m in config.metrics if METRICS[m].stat in ("fid", "kid")), None)
        best = results.best_snapshot(rows, rank_by) if len(paths) > 1 and rank_by else None
        print_report(results.table(rows, Path(best).name if best else None))
        if best:
            print(f"best snapshot by {rank_by}: {best}")
        print(f"appended {len(rows)} results to {out / results.METRICS_FILE}"
              + (f"; plots {', '.join(map(str, plots))}" if plots else ""))

    return show if lead else lambda: None


def cmd_eval(args: argparse.Namespace) -> int:
    from plumbing.errors import UserError

    from .. import dist
    from ..eval.ranks import start

    world = start(args.device)  # the same check on every rank, before any collective
    try:
        show = evaluate(args, world)
    except UserError:
        # Raised on every rank together (eval/ranks.py), so they leave the group in step. Any
        # other exception ends its own process, and torchrun then ends the others.
        dist.finish(world)
        raise
    dist.finish(world)
    show()  # last, after every collective: a reader that went away cannot leave a rank waiting
    return 0


def build_parser() -> argparse.ArgumentParser:
    # Raw text keeps the epilog's commands whole; the description is wrapped here instead.
    parser = Parser(prog=PROG, epilog=DEVICES, formatter_class=argparse.RawDescriptionHelpFormatter,
                    description=textwrap.fill("Score an any-resolution GAN: FID at R and at larger sizes (fid-full), "
                    "the upsampling baseline (fid-up), patch FID (pfid, and per scale: pfid-bins), KID with its "
                    "spread, a high-frequency proxy (hf-*) and power spectra per scale (spectrum-patch, and the "
                    "R image upsampled: spectrum-patch-up), against a dataset. Results are appended to the "
                    "run folder's metrics.jsonl.", 100, break_on_hyphens=False))
    parser.add_argument("target", type=Path, metavar="SNAPSHOT_OR_RUN",
                        help="a network-snapshot-*.pt or checkpoint.pt, or a run folder (every snapshot is scored)")
    parser.add_argument("--data", required=True, metavar="DATASET", help="the real images (an anyres dataset)")
    parser.add_argument("--metrics", type=metrics_arg, default=metrics_arg("fid-full,kid"),
                        help="comma-separated: fid-full, fid-up, pfid, pfid-up, pfid-bins, kid (kid-full), kid-up, "
                        "kid-patch, kid-patch-up, hf-full, hf-patch, hf-patch-up, spectrum-patch, spectrum-patch-up "
                        "(power per octave of frequency against real patches', per octave of S/R; plotted in "
                        "spectrum.png) (default fid-full,kid)")
    parser.add_argument("--size", type=int_between(8, 65536), metavar="S",
                        help="side of the full metrics (default R); above R the canvas renders by tiles and the "
                        "reals are the images whose shorter side is at least S")
    # -n as well: torchrun's own parser stops at --n, an ambiguous start of its --nnodes and --nproc-per-node.
    parser.add_argument("--n", "-n", type=int_between(2, 10**7), default=1000,
                        help="images or patches per set (default 1000; under torchrun write -n)")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the real draws and of the latents (default 0)")
    parser.add_argument("--s-min", type=SCALE, metavar="S", help="patch metrics: smallest scale (default: the run's)")
    parser.add_argument("--s-max", type=SCALE, metavar="S", help="patch metrics: largest scale (default: the run's)")
    parser.add_argument("--inception", metavar="FILE",
                        help="pytorch-fid's FID Inception weights, the plain state dict "
                        "pt_inception-2015-12-05-6726825d.pth (docs/generation.md), which fills anyres's own "
                        "FID Inception-v3 (2048-d pool features); with that exact file (sha256 checked) numbers "
                        "are comparable with published FID and KID. TorchScript files (StyleGAN's "
                        "inception-2015-12-05.pt) are programs and are refused. Default: the offline "
                        "EfficientNet-Lite0, comparable only with itself"),
    parser.add_argument("--feature-side", type=int_between(32, 1024), default=224, metavar="PX",
                        help="EfficientNet input side (default 224; smaller is faster and is another network)")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        help="default: cuda where there is one, as anyres-generate; under torchrun, cuda is each "
                        "process's cuda:LOCAL_RANK")
    parser.add_argument("--batch", type=int_between(1, 4096), default=16, help="images per forward (default 16)")
    parser.add_argument("--tile", type=int_between(8, 8192), default=256,
                        help="largest tile side for renders above it (default 256: bounds device memory)")
    parser.add_argument("--kid-subsets", type=int_between(1, 10_000), default=100,
                        help="KID: subsets averaged, its spread reported (default 100)")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="real statistics cache (default ~/.cache/anyres/eval)")
    parser.add_argument("--no-cache", action="store_true", help="draw and embed the real sets afresh, keep nothing")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where metrics.jsonl goes (default: the run folder)")
    parser.set_defaults(run=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
