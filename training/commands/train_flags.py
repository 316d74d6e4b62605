"""`anyres-train train`'s flags: bounded values -> a preset's TrainConfig, changed by
`dataclasses.replace`.

Kept apart from train.py (the command: preview, train, report) so that each stays a screen long.
Every numeric flag has stated bounds (plumbing.console), so that no value reaches the run that no
setting can mean; the config tree checks the rest once, as it is built (ConfigError, exit 2).
Under torchrun every rank parses the same flags; only rank 0 prints.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from plumbing.console import float_between, int_between
from plumbing.errors import ConfigError

PRESET_NAMES = ("tiny", "sg3t-256")  # run.config.PRESETS; named here so the CLI starts without torch

# Bounds shared with train.py and eval.py. A scale S is pixels across the canvas: 2**20 is beyond any photo's side.
SEED = int_between(0, 2**32 - 1)  # numpy's seed sequences take no negative entropy
SCALE = float_between(0, 2.0**20)
KIMG = float_between(0, 1e7)  # 10 billion images: far beyond any run; keeps step counts finite
WEIGHT = float_between(0, 1e4, low_open=False)
PROBABILITY = float_between(0, 1, low_open=False)
LEARNING_RATE = float_between(0, 1, low_open=False)  # Adam moves each weight by about lr per step


def add_train_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    t = sub.add_parser("train", help="train the any-resolution GAN (stage global, then stage patch)",
                       description="Stage 'global' trains G and D on whole canvases at R; stage 'patch' "
                       "starts from a stage-1 checkpoint and mixes in patches at scales S > R, regularised "
                       "by the frozen stage-1 generator. Stage 'global-360' trains a 360° model on frames of "
                       "cylindrical panoramas (each image one full turn), for anyres-generate --panorama. "
                       "Run under torchrun for several processes.")
    t.add_argument("--data", required=True, metavar="DATASET",
                   help="the dataset: whole canvases at R, and stage patch's patches unless --data-hr")
    t.add_argument("--data-hr", metavar="DATASET",
                   help="stage patch: draw the patches from this dataset instead (the paper: a high-resolution "
                   "subset); the global stream still reads --data")
    t.add_argument("--out", required=True, metavar="RUN", help="run folder: config, stats, checkpoint, samples")
    t.add_argument("--stage", choices=("global", "patch", "global-360"), default="global",
                   help="global (stage 1), patch (stage 2, from a stage-1 --teacher), or global-360: a 360° "
                   "model whose input wraps around a cylinder, trained on frames of panoramas, D seeing frames "
                   "that cross frame borders and the images' seams (default: global)")
    t.add_argument("--fov", type=float_between(1, 360, low_open=False), metavar="DEG",
                   help="stage global-360: degrees of the turn one frame spans; a turn is 360/DEG frames, and each "
                   "image is taken as one turn, its aspect within 1.5x of 360/DEG (default 60, the paper's)")
    t.add_argument("--preset", choices=PRESET_NAMES, default="tiny",
                   help="tiny (R = p = 32, trains visibly on 2 CPU cores) or sg3t-256 (StyleGAN3-T at 256 px, the "
                   "paper's settings); other flags change it (default tiny)")
    t.add_argument("--teacher", metavar="CKPT",
                   help="stage patch: the stage-1 checkpoint.pt, or any of its network-snapshot-*.pt")
    t.add_argument("--resume", action="store_true", help="continue RUN/checkpoint.pt exactly where it stopped")
    t.add_argument("--kimg", type=KIMG, help="training length in thousands of images (preset's default)")
    t.add_argument("--batch", type=int_between(1, 65536), help="global batch over all processes")
    t.add_argument("--patch-prob", type=PROBABILITY, default=0.5,
                   help="stage patch: probability that a step trains on a patch batch (default 0.5)")
    t.add_argument("--teacher-weight", type=WEIGHT, default=5.0, help="teacher L1 weight (default 5)")
    t.add_argument("--lpips", metavar="FILE",
                   help="LPIPS weights (AlexNet or VGG16 trunk and heads) as one plain state dict, made once where "
                   "the lpips package is: python -c \"import lpips, torch; torch.save(lpips.LPIPS(net='alex')"
                   ".state_dict(), 'lpips-alex.pth')\" (docs/training.md); adds masked LPIPS to the teacher loss. "
                   "TorchScript and torch.export files are programs and are refused"),
    t.add_argument("--gamma", type=WEIGHT, help="R1 weight")
    t.add_argument("--lr-g", type=LEARNING_RATE, help="G's Adam learning rate (preset's default)")
    t.add_argument("--lr-d", type=LEARNING_RATE, help="D's Adam learning rate (preset's default)")
    t.add_argument("--batch-gpu", type=int_between(1, 65536), metavar="N",
                   help="micro-batch per process: accumulate gradients over chunks of N (default: no split); "
                   "D's minibatch-std groups stay within a chunk")
    t.add_argument("--ema-rampup", type=PROBABILITY, metavar="F",
                   help="stage global: EMA half-life at most F x the images shown (default 0.05; 0: off)")
    t.add_argument("--compile", action="store_true",
                   help="torch.compile G and D (needs a C compiler; pays only on long GPU runs)")
    t.add_argument("--s-min", type=SCALE, metavar="S", help="smallest patch scale S, at least R and p (default: max(R, p); "
                   "the paper's stage 2 on a high-resolution subset: 2R)")
    t.add_argument("--s-max", type=SCALE, help="cap on the patch scale S (default: native side)")
    t.add_argument("--distribution", choices=("uniform", "log-uniform"), default="uniform",
                   help="how the patch scale S is drawn in [S_min, S_max]: uniform (the paper's, default) or "
                   "log-uniform (favours small S)")
    t.add_argument("--mirror", action="store_true",
                   help="flip half the images left to right, in both streams (T follows the flip)")
    t.add_argument("--no-scale-cond", action="store_true", help="ablation: G and D ignore the scale S")
    t.add_argument("--grid", choices=("stylegan3", "exact"),
                   help="the generator's training grids: 'stylegan3' (default: 10-sample margins, zero padding, "
                   "the paper's) or 'exact' (sized back from the patch so that no padding reaches a pixel; about "
                   "1.4x the work at 256 px). Images always render on exact grids")
    t.add_argument("--tick-kimg", type=KIMG, help="kimg between stats lines")
    t.add_argument("--snap", "--snap-ticks", dest="snap_ticks", type=int_between(1, 10**6), metavar="TICKS",
                   help="ticks between snapshots: checkpoint.pt (replaced), a kept network-snapshot-KIMG.pt "
                   "(G, G_ema, D, config) and a sample grid (preset's default)")
    t.add_argument("--metrics", type=metrics_arg, metavar="LIST",
                   help="score G_ema while training, with anyres-eval's metrics (comma-separated: fid-full, kid, "
                   "kid-patch, pfid, hf-patch, ...; EfficientNet-Lite0 features): rows in RUN/metrics.jsonl, values "
                   "in the tick's stats line (default: none)")
    t.add_argument("--metric-ticks", type=int_between(1, 10**6), metavar="N",
                   help="ticks between metric evaluations, each on a snapshot written then (default: --snap's)")
    t.add_argument("--metric-n", type=int_between(2, 10**6), metavar="N",
                   help="images or patches per metric set (preset's default: tiny 64, sg3t-256 1000)")
    t.add_argument("--no-report", action="store_true",
                   help="do not write RUN/report.html at the end (anyres-train report RUN writes it any time)")
    t.add_argument("--workers", type=int_between(0, 256), metavar="N",
                   help="loader worker processes per rank (default: up to 4 on a GPU, 0 on the CPU)")
    t.add_argument("--seed", type=SEED, default=0, help="the run's seed: weights, latents, data order (default 0)")
    t.add_argument("--aug", choices=("ada", "diffaug", "none"),
                   help="augment every image D sees: ADA with adaptive p (default), DiffAugment, or none")
    t.add_argument("--ada-target", type=float_between(0, 1, low_open=False, high_open=True),
                   help="ADA: the E[sign(D(real))] that p is steered to (default 0.6)")
    t.add_argument("--ada-kimg", type=KIMG, help="ADA: kimg for p to go from 0 to 1 (preset's default)")
    return t


def metrics_arg(text: str) -> tuple[str, ...]:
    """--metrics: known names only, refused at the flag (the config checks library callers)."""
    from ..eval.names import parse_metrics  # torch-free

    try:
        return parse_metrics(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _given(**values) -> dict:
    """The flags the user gave: the others keep the preset's value."""
    return {k: v for k, v in values.items() if v is not None}


def config_from_args(args: argparse.Namespace):
    from ..dist import machine_loader_processes
    from ..run.config import PRESETS, without_scale_cond  # torch-heavy: only when training

    base = PRESETS[args.preset]
    stream = replace(base.loader.stream, distribution=args.distribution, mirror=args.mirror,
                     **_given(s_min=args.s_min, s_max=args.s_max))
    workers, pin = machine_loader_processes(args.workers)  # resolved here, so config.json says what ran
    aug = replace(base.aug, **_given(kind=args.aug, target=args.ada_target, ada_kimg=args.ada_kimg))
    loader = replace(base.loader, data=args.data, stream=stream, num_workers=workers, pin_memory=pin,
                     seed=args.seed,
                     **_given(batch_size=args.batch))
    if args.fov is not None and args.stage != "global-360":
        raise ConfigError("--fov is the frame width of --stage global-360")
    g = replace(base.g, fov=args.fov or 60.0) if args.stage == "global-360" else base.g  # a 360° model
    cfg = replace(base, out=str(args.out), g=g, loader=loader, aug=aug, stage=args.stage, teacher=args.teacher,
                  resume=args.resume, data_hr=args.data_hr, patch_prob=args.patch_prob,
                  teacher_weight=args.teacher_weight,
                  lpips=args.lpips, **_given(kimg=args.kimg, gamma=args.gamma, lr_g=args.lr_g, lr_d=args.lr_d,
                                             tick_kimg=args.tick_kimg, snap_ticks=args.snap_ticks,
                                             metrics=args.metrics, metric_ticks=args.metric_ticks,
                                             metric_n=args.metric_n))
    recipe = _given(batch_gpu=args.batch_gpu, ema_rampup=args.ema_rampup)
    if recipe.get("ema_rampup") == 0:
        recipe["ema_rampup"] = None  # 0 turns the ramp-up off
    cfg = replace(cfg, compile=args.compile, report=not args.no_report, **recipe)
    if args.grid is not None:
        cfg = replace(cfg, g=replace(cfg.g, grid=args.grid))
    return without_scale_cond(cfg) if args.no_scale_cond else cfg
