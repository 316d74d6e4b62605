"""Training throughput of the any-resolution GAN: images/s and s/kimg per preset and stage.

    .venv/bin/python bench/bench_train.py [--presets tiny sg3t-256] [--steps 5] [--warmup 2]
        [--threads 2] [--batch sg3t-256=4]

One process, the Trainer's real step (D phase with lazy R1 every 16th step, G phase, EMA; in
stage patch the frozen teacher's render and the teacher loss on every step, i.e. the patch-batch
cost), on synthetic batches already in memory: the loader's own speed is bench_loader.py's
business. Reported: the median step over `--steps` timed steps after `--warmup` untimed ones,
converted to images/s and s/kimg at the batch used. R1 steps are timed when they fall in the
window (step 0 is one, so warm-up absorbs it by default). On a GPU the step runs under bf16
autocast; on CPU in float32.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import time

import numpy as np
import torch

from training.geometry import patch_transform
from training.run.config import PRESETS
from training.run.trainer import Trainer


def synthetic_batch(cfg, stage: str, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    b, p, r = cfg.batch, cfg.patch_size, cfg.resolution
    real = torch.from_numpy(rng.uniform(-1, 1, (b, 3, p, p)).astype(np.float32))
    if stage == "global":
        return real, torch.eye(3).expand(b, 3, 3).clone(), torch.full((b,), float(r))
    scales = rng.uniform(r, 4 * r, b)
    reach = 0.5 - p / (2 * scales)
    centres = rng.uniform(-1, 1, (b, 2)) * reach[:, None]
    t = np.stack([patch_transform(s, cu, cv, p) for s, (cu, cv) in zip(scales, centres)])
    return real, torch.from_numpy(t), torch.from_numpy(scales.astype(np.float32))


def measure(preset: str, stage: str, batch: int | None, steps: int, warmup: int, device: torch.device) -> dict:
    cfg = PRESETS[preset]
    if batch is not None:
        cfg = dataclasses.replace(cfg, loader=dataclasses.replace(cfg.loader, batch_size=batch))
    cfg = dataclasses.replace(cfg, stage=stage)
    trainer = Trainer(cfg, device)
    if stage == "patch":
        trainer.set_teacher(copy.deepcopy(trainer.G_ema))
    rng = np.random.default_rng(0)
    times = []
    for i in range(warmup + steps):
        real, t, s = synthetic_batch(cfg, stage, rng)
        z_d, z_g = torch.randn(cfg.batch, cfg.g.z_dim), torch.randn(cfg.batch, cfg.g.z_dim)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.step(real, t, s, z_d, z_g, stage == "patch", cfg.batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    step = statistics.median(times)
    return {"preset": preset, "stage": stage, "batch": cfg.batch, "step_s": step, "images_per_s": cfg.batch / step,
            "s_per_kimg": 1000 * step / cfg.batch, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "sg3t-256"])
    parser.add_argument("--stages", nargs="+", default=["global", "patch"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--batch", action="append", default=[], metavar="PRESET=N",
                        help="override a preset's batch, e.g. sg3t-256=4 (a CPU cannot afford 32 per step)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = {k: int(v) for k, v in (item.split("=") for item in args.batch)}
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    print("| preset | stage | batch | median step (s) | images/s | s/kimg |")
    print("| --- | --- | --- | --- | --- | --- |")
    for preset in args.presets:
        for stage in args.stages:
            r = measure(preset, stage, batches.get(preset), args.steps, args.warmup, device)
            print(f"| {preset} | {stage} | {r['batch']} | {r['step_s']:.3f} | {r['images_per_s']:.2f} | "
                  f"{r['s_per_kimg']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
