"""`anyres-train train`: flags -> TrainConfig -> loop.train -> one summary line.

Kept apart from cli.py's loader commands so that each stays a screen long; cli.py registers it.
Under torchrun every rank parses the same flags; only rank 0 prints.
"""

from __future__ import annotations

import argparse
import os

from shards.console import int_at_least

from .errors import TrainingError

PRESET_NAMES = ("tiny", "sg3t-256")  # presets.PRESETS; named here so the CLI starts without torch


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def probability(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def add_train_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    t = sub.add_parser("train", help="train the any-resolution GAN (stage global, then stage patch)",
                       description="Stage 'global' trains G and D on whole canvases at R; stage 'patch' "
                       "starts from a stage-1 checkpoint and mixes in patches at scales S > R, regularised "
                       "by the frozen stage-1 generator. Run under torchrun for several processes.")
    t.add_argument("--data", required=True, metavar="DATASET")
    t.add_argument("--out", required=True, metavar="RUN", help="run folder: config, stats, checkpoint, samples")
    t.add_argument("--stage", choices=("global", "patch"), default="global")
    t.add_argument("--preset", choices=PRESET_NAMES, default="tiny")
    t.add_argument("--teacher", metavar="CKPT", help="stage patch: the stage-1 checkpoint.pt")
    t.add_argument("--resume", action="store_true", help="continue RUN/checkpoint.pt exactly where it stopped")
    t.add_argument("--kimg", type=non_negative_float, help="training length in thousands of images (preset's default)")
    t.add_argument("--batch", type=int_at_least(1), help="global batch over all processes")
    t.add_argument("--patch-prob", type=probability, default=0.5,
                   help="stage patch: probability that a step trains on a patch batch (default 0.5)")
    t.add_argument("--teacher-weight", type=non_negative_float, default=5.0, help="teacher L1 weight (default 5)")
    t.add_argument("--lpips", metavar="FILE", help="local LPIPS network (torch.export .pt2, or TorchScript): adds masked LPIPS to the teacher loss")
    t.add_argument("--gamma", type=non_negative_float, help="R1 weight")
    t.add_argument("--lr-g", type=non_negative_float)
    t.add_argument("--lr-d", type=non_negative_float)
    t.add_argument("--s-max", type=non_negative_float, help="cap on the patch scale S (default: native side)")
    t.add_argument("--distribution", choices=("uniform", "log-uniform"), default="uniform")
    t.add_argument("--no-scale-cond", action="store_true", help="ablation: G and D ignore the scale S")
    t.add_argument("--tick-kimg", type=non_negative_float, help="kimg between stats lines")
    t.add_argument("--snap-ticks", type=int_at_least(1), help="ticks between checkpoints and sample grids")
    t.add_argument("--workers", type=int_at_least(0), default=0, help="loader worker processes per rank")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(run=cmd_train)
    return t


def cmd_train(args: argparse.Namespace) -> int:
    from .loop import train  # torch-heavy: only when training
    from .presets import build_config

    try:
        cfg = build_config(args.preset, args.data, str(args.out), scale_cond=not args.no_scale_cond,
                           stage=args.stage, teacher=args.teacher, resume=args.resume, kimg=args.kimg,
                           batch=args.batch, patch_prob=args.patch_prob, teacher_weight=args.teacher_weight,
                           lpips=args.lpips, gamma=args.gamma, lr_g=args.lr_g, lr_d=args.lr_d, s_max=args.s_max,
                           distribution=args.distribution, tick_kimg=args.tick_kimg, snap_ticks=args.snap_ticks,
                           workers=args.workers, seed=args.seed)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    record = train(cfg)
    if int(os.environ.get("RANK", 0)) == 0:
        losses = ", ".join(f"{k} {record[k]:.3f}" for k in ("loss_G", "loss_D", "teacher") if record.get(k) is not None)
        print(f"trained to {record.get('kimg', 0):.2f} kimg ({record.get('images_per_sec', 0):.1f} images/s; {losses}): "
              f"{args.out}/checkpoint.pt")
    return 0
