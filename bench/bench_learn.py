"""Does it learn? KID at R through the stages, and at 4R: rendering against upsampling.

    nice .venv/bin/python bench/bench_learn.py [--photos ../shared/photos] [--seeds 0 1 2]
        [--kimg1 2.5] [--kimg2 1.25] [--n 128] [--jobs 2] [--work /tmp/bench-learn] [--max-side PX]

Packs the photos (`anyres-shards pack`, once), then for each seed drives the real CLIs, one thread
each, `--jobs` at a time (seed by seed, whatever is ready first):

- init:      `anyres-train train --preset tiny --kimg 0.016`: one optimiser step of 16 images from
             the initialisation; its snapshot stands for the initial model.
- stage 1:   `--stage global` for --kimg1.
- stage 2:   `--stage patch --teacher <stage 1>/checkpoint.pt --s-min 64` (2R, the paper's) for
             --kimg2.
- no-sc:     the ablation. The landed trainer refuses a teacher of another architecture, and
             `--no-scale-cond` drops the scale layers from G and D, so the ablation has its own
             stage 1 (`--no-scale-cond`, same seed, --kimg1) and its own stage 2 from it.

Each model's last snapshot is scored by `anyres-eval` (EfficientNet-Lite0 at its default side,
the same --n and --eval-seed everywhere, so the real sets are drawn once and shared through
WORK/cache): `kid` at R = 32; at 4R = 128 (`--s-min 128 --s-max 128`: every patch, real or
generated, is a p = 32 window of the canvas at S = 128 exactly) `kid-patch` and `hf-patch`
(variance of the Laplacian of grey patches, and the real patches' value), and for stage 1 also
`kid-patch-up` / `hf-patch-up` (its R image upsampled 4x over the same windows: fid-up's
counterpart); `spectrum-patch` (power per octave of frequency against real patches', and for
stage 1 `spectrum-patch-up`, its R image brought to 4R by a Lanczos-3 interpolator). Prints
each seed's numbers as it completes, then the table over seeds
(mean ± sample standard deviation, and the range), and writes WORK/bench-learn.json.

Cost (defaults): per seed 4 trainings (2 x 2.5 kimg, 2 x 1.25 kimg, ~20 s start-up each), a
0.016 kimg one, and 5 evaluations (30-120 s each at n = 128). Measured 2026-12-01 with another
process holding one of the 2 cores throughout: tiny trained at 125-300 s/kimg per job, and one
seed took 16-20 min, so 3 seeds take ~55 min then; ~35 min is the estimate on 2 quiet cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
S4R = 128  # 4R for the tiny preset (R = p = 32)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def shrink(photos: Path, out: Path, max_side: int) -> Path:
    """Copies of the photos whose longer side is at most max_side (Lanczos, baseline JPEG q95).

    Why: the shared photos are 2 to 17 MP, mostly progressive JPEGs, which cost a full decode at
    any DCT reduction; at R = 32 the loader then spends most of a CPU step decoding (see
    docs/BENCHMARKS.md). 1024 px still gives patches up to S = 32R, far beyond the 4R measured."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(photos.iterdir()):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png", ".webp"):
            continue
        target = out / (path.stem + ".jpg")
        if target.exists():
            continue
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            image.save(target, quality=95, progressive=False)
    return out


def pack(photos: Path, data: Path) -> None:
    if (data / "dataset.json").exists():
        return
    subprocess.run([str(BIN / "anyres-shards"), "pack", str(photos), str(data), "--shard-size", "8MB"], check=True,
                   stdout=subprocess.DEVNULL)


@dataclass
class Task:
    name: str  # seed/model/kind
    cmd: list[str]
    log: Path
    deps: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    start: float = 0.0
    seconds: float | None = None


def last_snapshot(run: Path) -> Path:
    snaps = sorted(run.glob("network-snapshot-*.pt"))
    if not snaps:
        raise SystemExit(f"{run}: no snapshot")
    return snaps[-1]


# model -> (metrics at R and at 4R)
EVALS = {
    "init": "kid",
    "stage1": "kid,kid-patch,hf-patch,kid-patch-up,hf-patch-up,spectrum-patch,spectrum-patch-up",
    "stage2": "kid,kid-patch,hf-patch,spectrum-patch",
    "stage1-nosc": "kid",
    "stage2-nosc": "kid,kid-patch,hf-patch,spectrum-patch",
}


def plan(args: argparse.Namespace, data: Path, work: Path) -> list[Task]:
    tasks = []
    for seed in args.seeds:
        root = work / f"seed{seed}"
        root.mkdir(parents=True, exist_ok=True)

        def train(model: str, kimg: float, extra: list[str], deps: list[str], root: Path = root,
                  seed: int = seed) -> None:
            cmd = [str(BIN / "anyres-train"), "train", "--data", str(data), "--out", str(root / model), "--preset",
                   "tiny", "--kimg", str(kimg), "--seed", str(seed), *extra]
            tasks.append(Task(f"{seed}/{model}/train", cmd, root / f"{model}.train.log", deps))

        s1 = str(root / "stage1" / "checkpoint.pt")
        s1n = str(root / "stage1-nosc" / "checkpoint.pt")
        train("stage1", args.kimg1, ["--stage", "global"], [])
        train("stage1-nosc", args.kimg1, ["--stage", "global", "--no-scale-cond"], [])
        train("stage2", args.kimg2, ["--stage", "patch", "--teacher", s1, "--s-min", "64"], [f"{seed}/stage1/train"])
        train("stage2-nosc", args.kimg2, ["--stage", "patch", "--teacher", s1n, "--s-min", "64", "--no-scale-cond"],
              [f"{seed}/stage1-nosc/train"])
        train("init", 0.016, ["--stage", "global"], [])
        for model in ("stage1", "stage1-nosc", "stage2", "stage2-nosc", "init"):
            cmd = [str(BIN / "anyres-eval"), "<snapshot>", "--data", str(data), "--metrics", EVALS[model], "--n",
                   str(args.n), "--seed", str(args.eval_seed), "--s-min", str(S4R), "--s-max", str(S4R), "--cache",
                   str(work / "cache"), "--out", str(root / f"eval-{model}")]
            tasks.append(Task(f"{seed}/{model}/eval", cmd, root / f"{model}.eval.log", [f"{seed}/{model}/train"]))
    return tasks


def run_all(tasks: list[Task], jobs: int, on_done) -> None:
    done: set[str] = set()
    pending = list(tasks)
    running: list[Task] = []
    while pending or running:
        for t in [t for t in pending if all(d in done for d in t.deps)]:
            if len(running) >= jobs:
                break
            if "<snapshot>" in t.cmd:
                run = Path(tasks_by_name(tasks, t.name.replace("/eval", "/train")).cmd[5])
                t.cmd[t.cmd.index("<snapshot>")] = str(last_snapshot(run))
            print(f"[{time.strftime('%H:%M:%S')}] start {t.name}: {shlex.join(t.cmd)}", flush=True)
            t.log.parent.mkdir(parents=True, exist_ok=True)
            t.proc = subprocess.Popen(["nice", *t.cmd], env=ENV, stdout=t.log.open("w"), stderr=subprocess.STDOUT)
            t.start = time.perf_counter()
            pending.remove(t)
            running.append(t)
        time.sleep(1)
        for t in list(running):
            if t.proc.poll() is None:
                continue
            running.remove(t)
            t.seconds = time.perf_counter() - t.start
            if t.proc.returncode:
                tail = t.log.read_text(errors="replace").strip().splitlines()[-5:]
                raise SystemExit(f"{t.name} failed (exit {t.proc.returncode}); {t.log}:\n" + "\n".join(tail))
            print(f"[{time.strftime('%H:%M:%S')}] done  {t.name} in {t.seconds:.0f} s", flush=True)
            done.add(t.name)
            on_done(t, done)


def tasks_by_name(tasks: list[Task], name: str) -> Task:
    return next(t for t in tasks if t.name == name)


def read_evals(root: Path) -> dict[str, dict[str, dict]]:
    """model -> metric -> the metrics.jsonl row."""
    out: dict[str, dict[str, dict]] = {}
    for model in EVALS:
        path = root / f"eval-{model}" / "metrics.jsonl"
        if path.exists():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            out[model] = {r["metric"]: r for r in rows}  # the last row of each metric wins
    return out


# The table's rows: (label, model, metric, field)
ROWS = [
    ("KID at R=32, initial (1 step)", "init", "kid-full", "value"),
    ("KID at R=32, stage 1", "stage1", "kid-full", "value"),
    ("KID at R=32, stage 2", "stage2", "kid-full", "value"),
    ("KID at R=32, stage 1 no-sc", "stage1-nosc", "kid-full", "value"),
    ("KID at R=32, stage 2 no-sc", "stage2-nosc", "kid-full", "value"),
    ("patch KID at 4R, stage 2 rendered", "stage2", "kid-patch", "value"),
    ("patch KID at 4R, stage 1 upsampled", "stage1", "kid-patch-up", "value"),
    ("patch KID at 4R, stage 2 no-sc rendered", "stage2-nosc", "kid-patch", "value"),
    ("patch KID at 4R, stage 1 rendered", "stage1", "kid-patch", "value"),
    ("hf at 4R, real patches", "stage2", "hf-patch", "real"),
    ("hf at 4R, stage 2 rendered", "stage2", "hf-patch", "value"),
    ("hf at 4R, stage 1 upsampled", "stage1", "hf-patch-up", "value"),
    ("hf at 4R, stage 2 no-sc rendered", "stage2-nosc", "hf-patch", "value"),
    ("hf at 4R, stage 1 rendered", "stage1", "hf-patch", "value"),
]
# Power per octave at 4R as a ratio to real patches' (spectrum-patch rows' band_ratio): above
# 1/8 cycle per pixel, R's Nyquist at 4R, the upsampled image holds only its imaging.
for band, label in ((1, "[1/16,1/8)"), (2, "[1/8,1/4)"), (3, "[1/4,1/2]")):
    ROWS += [(f"spectrum at 4R, {label} c/px, stage 2 rendered / real", "stage2", "spectrum-patch", band),
             (f"spectrum at 4R, {label} c/px, stage 1 upsampled / real", "stage1", "spectrum-patch-up", band),
             (f"spectrum at 4R, {label} c/px, stage 2 no-sc rendered / real", "stage2-nosc", "spectrum-patch", band),
             (f"spectrum at 4R, {label} c/px, stage 1 rendered / real", "stage1", "spectrum-patch", band)]


def seed_values(evals: dict) -> dict[str, dict]:
    out = {}
    for label, model, metric, fld in ROWS:
        row = evals.get(model, {}).get(metric)
        if row is not None and isinstance(fld, int):  # a band of a spectrum row
            out[label] = {"value": row["band_ratio"][fld]}
        elif row is not None:
            out[label] = {"value": row[fld], **({"kid_std": row["std"]} if "std" in row and fld == "value" else {})}
    return out


def fmt(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def summary(per_seed: dict[int, dict]) -> list[dict]:
    rows = []
    for label, *_ in ROWS:
        vals = [v[label]["value"] for v in per_seed.values() if label in v]
        if not vals:
            continue
        rows.append({"row": label, "seeds": len(vals), "mean": statistics.fmean(vals),
                     "std": statistics.stdev(vals) if len(vals) > 1 else None, "min": min(vals), "max": max(vals),
                     "values": vals})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", default="../shared/photos")
    parser.add_argument("--work", default="/tmp/bench-learn")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kimg1", type=float, default=2.5, help="stage 1 (global) length")
    parser.add_argument("--kimg2", type=float, default=1.25, help="stage 2 (patch) length")
    parser.add_argument("--n", type=int, default=128, help="images or patches per set, every metric")
    parser.add_argument("--eval-seed", type=int, default=0, help="anyres-eval --seed, every row")
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time (each one thread)")
    parser.add_argument("--max-side", type=int, default=None, metavar="PX",
                        help="train on copies of the photos at most PX on their longer side (default: as they are)")
    args = parser.parse_args()
    command = "nice " + shlex.join([os.path.relpath(sys.executable), *sys.argv])
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "photos"
    photos = Path(args.photos)
    if args.max_side:
        photos = shrink(photos, work / f"photos-{args.max_side}px", args.max_side)
    pack(photos, data)
    tasks = plan(args, data, work)
    per_seed: dict[int, dict] = {}
    t0 = time.perf_counter()

    def write_json() -> None:
        seconds = {t.name: t.seconds for t in tasks if t.seconds is not None}
        (work / "bench-learn.json").write_text(json.dumps(
            {"command": command, "args": vars(args), "preset": "tiny", "R": 32, "p": 32, "S_4R": S4R,
             "features": "efficientnet-lite0@224 (anyres-eval default)", "spread": "sample std over seeds",
             "wall_seconds": time.perf_counter() - t0, "per_seed": {str(k): v for k, v in per_seed.items()},
             "summary": summary(per_seed), "task_seconds": seconds}, indent=1))

    def on_done(task: Task, done: set[str]) -> None:
        seed = int(task.name.split("/")[0])
        if all(t.name in done for t in tasks if t.name.startswith(f"{seed}/")):
            per_seed[seed] = seed_values(read_evals(work / f"seed{seed}"))
            print(f"\n== seed {seed} ==")
            for label, v in per_seed[seed].items():
                extra = f" (± {fmt(v['kid_std'])} over KID subsets)" if "kid_std" in v else ""
                print(f"  {label:42s} {fmt(v['value'])}{extra}")
            print(flush=True)
            write_json()

    run_all(tasks, args.jobs, on_done)
    wall = time.perf_counter() - t0
    write_json()
    resized = f", resized to at most {args.max_side} px" if args.max_side else ""
    print(f"\ntiny preset (R = p = 32) on {args.photos}{resized}; stage 1 {args.kimg1:g} kimg, stage 2 {args.kimg2:g} kimg "
          f"(--s-min 64); anyres-eval EfficientNet-Lite0@224, n = {args.n}, eval seed {args.eval_seed}; patches at "
          f"S = {S4R} exactly; seeds {' '.join(map(str, args.seeds))}; {args.jobs} jobs of 1 thread; "
          f"wall {wall / 60:.1f} min")
    print("| row | mean ± std over seeds | min .. max | per seed |")
    print("| --- | --- | --- | --- |")
    for r in summary(per_seed):
        std = "" if r["std"] is None else f" ± {fmt(r['std'])}"
        print(f"| {r['row']} | {fmt(r['mean'])}{std} | {fmt(r['min'])} .. {fmt(r['max'])} | "
              f"{', '.join(fmt(v) for v in r['values'])} |")
    print(f"\ncommand: {command}\njson: {work / 'bench-learn.json'}")


if __name__ == "__main__":
    main()
