"""Does discriminator augmentation stop D's logits running away on a tiny dataset?

    nice .venv/bin/python bench/bench_augment.py [--photos ../shared/photos] [--kimg 6]
        [--augs none ada diffaug] [--jobs 1] [--work /tmp/bench-augment]

Packs the photos into a dataset (`anyres-shards pack`, once), then trains the tiny preset's stage
global for `--kimg` with each `--aug`, same seed, one thread each, `--jobs` at a time (the real
CLI, so the run folders are ordinary ones). Prints D_real / D_fake (and ADA's p) per tick from each
run's stats.jsonl, then a table of the first and last ticks. Without augmentation D memorises
15 photos within a few kimg and the logits drift apart; with ADA p should rise until
E[sign(D_real)] sits near 0.6 and the logits stay bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def pack(photos: Path, data: Path) -> None:
    if (data / "dataset.json").exists():
        return
    subprocess.run([str(BIN / "anyres-shards"), "pack", str(photos), str(data), "--shard-size", "8MB"], check=True,
                   stdout=subprocess.DEVNULL)


def train(data: Path, out: Path, aug: str, kimg: float, seed: int) -> subprocess.Popen:
    cmd = [str(BIN / "anyres-train"), "train", "--data", str(data), "--out", str(out), "--preset", "tiny",
           "--kimg", str(kimg), "--aug", aug, "--seed", str(seed)]
    print("$", " ".join(cmd), flush=True)
    return subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)


def ticks(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines() if line.strip()]


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", default="../shared/photos")
    parser.add_argument("--work", default="/tmp/bench-augment")
    parser.add_argument("--kimg", type=float, default=6.0)
    parser.add_argument("--augs", nargs="+", default=["none", "ada", "diffaug"], choices=["none", "ada", "diffaug"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (each one thread)")
    args = parser.parse_args()
    work = Path(args.work)
    data = work / "photos"
    pack(Path(args.photos), data)
    seconds: dict[str, float] = {}
    pending = list(args.augs)
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    while pending or running:
        while pending and len(running) < args.jobs:
            aug = pending.pop(0)
            running[aug] = (train(data, work / f"run-{aug}", aug, args.kimg, args.seed), time.perf_counter())
        for aug, (proc, start) in list(running.items()):
            if proc.poll() is not None:
                if proc.returncode:
                    raise SystemExit(f"--aug {aug}: training failed (exit {proc.returncode})")
                seconds[aug] = time.perf_counter() - start
                del running[aug]
        time.sleep(1)
    rows = []
    for aug in args.augs:
        records = ticks(work / f"run-{aug}")
        print(f"--aug {aug}: kimg, D_real, D_fake, aug_p per tick")
        for r in records:
            print(f"  {r['kimg']:6.2f}  {fmt(r['D_real'])}  {fmt(r['D_fake'])}  {fmt(r.get('aug_p'))}")
        first, last = records[0], records[-1]
        gap = max(r["D_real"] - r["D_fake"] for r in records)
        rows.append(f"| {aug} | {fmt(first['D_real'])} / {fmt(first['D_fake'])} | {fmt(last['D_real'])} / "
                    f"{fmt(last['D_fake'])} | {gap:.2f} | {fmt(last.get('aug_p'))} | {last['loss_G']:.2f} | "
                    f"{seconds[aug] / 60:.1f} |")
    print(f"\ntiny preset, stage global, {args.kimg:g} kimg on {args.photos}, seed {args.seed}, 1 thread per run, "
          f"{args.jobs} at a time")
    print("| --aug | D_real / D_fake, first tick | D_real / D_fake, last tick | largest gap | p at the end | "
          "loss_G, last tick | minutes |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
