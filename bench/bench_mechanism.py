"""Does zooming add detail that only native-resolution patches teach? A controlled experiment.

    nice .venv/bin/python bench/bench_mechanism.py [--seeds 0 1 2] [--kimg1 4] [--kimg2 8] [--jobs 2]
        [--images 128] [--native 256] [--freq 26] [--angle 20] [--amplitude 20] [--n 64]
        [--work /tmp/bench-mechanism] [--curve] [--figure docs/results/mechanism.png]

The data (mechanism_data.py): smooth layouts plus a grey sinusoid of --freq cycles per canvas in
direction --angle, invisible at R = 32 and visible from 2R on, at native sides of --native px;
and a twin set with the same layouts and no texture. Per seed, the real CLIs (`anyres-train
train --preset tiny`), one thread each, --jobs at a time:

  stage 1           --stage global on the textured set (at R the two sets look the same)
  stage 2           --stage patch --teacher <stage 1> --s-min 2R on the textured set
  stage 2, twin     the same on the twin set: the patches hold no texture to learn
  stage 2, teacher 0  --teacher-weight 0: what the regulariser costs, or prevents
  stage 2, no scale   --no-scale-cond, from its own stage 1 (also --no-scale-cond): the trainer
                      refuses a teacher of another architecture

The measure: rho, the power at the texture's frequency and direction in patches at S = 2R, 4R
and 8R (eval/spectrum.tone_power), generated over real, for each model's final G_ema, through
the real patches' own T and S; for stage 1 also its R image brought to S by a Lanczos-3
interpolator over the same windows. The twin arm is scored against the textured reals too.
Beside it, each stage 2's distance from its teacher at R (mean |G(z) - teacher(z)|, in [-1, 1]
units). Prints each seed as it completes, then mean ± sample std over seeds, and writes
WORK/bench-mechanism.json; --figure draws the spectra at 4R and 4R renders side by side;
--curve adds rho at 4R for every snapshot of the textured stage 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from mechanism_data import BIN, Texture, make_sets  # noqa: E402

R = 32  # the tiny preset
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
SCALES = (2, 4, 8)  # S / R where rho is measured
ARMS = ("stage1", "stage2", "stage2-twin", "stage2-teacher0", "stage2-noscale")


@dataclass
class Task:
    name: str
    argv: list[str]
    needs: list[str] = field(default_factory=list)
    seconds: float | None = None


def seed_tasks(work: Path, seed: int, textured: Path, twin: Path, kimg1: float, kimg2: float,
               snap_ticks: int = 10, arms: tuple[str, ...] = ARMS) -> list[Task]:
    """The trainings of one seed for `arms` (stage 1 always; the no-scale stage 1 only for its arm)."""
    root = work / f"seed{seed}"
    common = ["--preset", "tiny", "--seed", str(seed), "--no-report", "--snap", str(snap_ticks)]

    def train(name: str, data: Path, kimg: float, *extra: str) -> list[str]:
        return ["train", "--data", str(data), "--out", str(root / name), "--kimg", str(kimg), *common, *extra]

    def stage2(name: str, teacher: str, data: Path, *extra: str) -> Task:
        return Task(f"{seed}/{name}", train(name, data, kimg2, "--stage", "patch", "--teacher",
                                            str(root / teacher / "checkpoint.pt"), "--s-min", str(2 * R), *extra),
                    [f"{seed}/{teacher}"])

    tasks = {
        "stage1": Task(f"{seed}/stage1", train("stage1", textured, kimg1)),
        "stage1-noscale": Task(f"{seed}/stage1-noscale", train("stage1-noscale", textured, kimg1, "--no-scale-cond")),
        "stage2": stage2("stage2", "stage1", textured),
        "stage2-twin": stage2("stage2-twin", "stage1", twin),
        "stage2-teacher0": stage2("stage2-teacher0", "stage1", textured, "--teacher-weight", "0"),
        "stage2-noscale": stage2("stage2-noscale", "stage1-noscale", textured, "--no-scale-cond"),
    }
    wanted = {"stage1", *arms} | ({"stage1-noscale"} if "stage2-noscale" in arms else set())
    return [task for name, task in tasks.items() if name in wanted]


def run_tasks(tasks: list[Task], jobs: int, work: Path, on_done=lambda task, done: None) -> None:
    """Each task once its needs are done, `jobs` at a time; a run finished with the same flags
    is skipped, so a killed bench resumes (an unfinished one starts over)."""
    done: set[str] = set()
    lock = threading.Condition()
    pending = list(tasks)
    failures: list[str] = []

    def finished(task: Task) -> bool:
        out = Path(task.argv[task.argv.index("--out") + 1])
        marker = out / "finished.json"
        return (out / "checkpoint.pt").exists() and marker.exists() and json.loads(marker.read_text()) == task.argv

    def worker() -> None:
        while True:
            with lock:
                ready = None
                while ready is None:
                    if failures or not pending:
                        return
                    ready = next((t for t in pending if all(n in done for n in t.needs)), None)
                    if ready is None:
                        lock.wait()
                pending.remove(ready)
            if not finished(ready):
                out = Path(ready.argv[ready.argv.index("--out") + 1])
                shutil.rmtree(out, ignore_errors=True)  # a killed or other-length run starts over
                start = time.perf_counter()
                log = work / "logs" / (ready.name.replace("/", "-") + ".log")
                log.parent.mkdir(parents=True, exist_ok=True)
                with open(log, "w") as sink:
                    code = subprocess.run([str(BIN / "anyres-train"), *ready.argv], env=ENV, stdout=sink,
                                          stderr=subprocess.STDOUT).returncode
                ready.seconds = time.perf_counter() - start
                if code != 0:
                    with lock:
                        failures.append(f"{ready.name} failed ({code}); see {log}")
                        lock.notify_all()
                    return
                (out / "finished.json").write_text(json.dumps(ready.argv))  # the same flags: done
            with lock:
                done.add(ready.name)
                lock.notify_all()
            on_done(ready, set(done))  # outside the lock: measuring a seed must not hold up the others

    threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit("; ".join(failures))


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kimg1", type=float, default=4.0, help="stage 1 length (kimg)")
    parser.add_argument("--kimg2", type=float, default=8.0, help="stage 2 length (kimg)")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once, one thread each")
    parser.add_argument("--images", type=int, default=128, help="images per set")
    parser.add_argument("--native", type=int, default=256, help="native side of the images (8R: patches to 8R)")
    parser.add_argument("--freq", type=float, default=26.0, help="texture frequency, cycles per canvas")
    parser.add_argument("--angle", type=float, default=20.0, help="texture direction, degrees from the u axis")
    parser.add_argument("--amplitude", type=float, default=20.0, help="texture amplitude, grey levels")
    parser.add_argument("--n", type=int, default=64, help="patches per measure")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS),
                        help="which arms to train and score (stage 1 always): e.g. a longer run of two of them")
    parser.add_argument("--snap", type=int, default=10, help="ticks between snapshots (--curve reads them)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-mechanism"))
    parser.add_argument("--curve", action="store_true", help="rho at 4R for every snapshot of stage 2")
    parser.add_argument("--figure", type=Path, help="draw the spectra and the 4R renders of the first seed here")
    args = parser.parse_args()
    from mechanism_measure import draw_figure, measure_seed, rho_curve  # torch: after the flags

    texture = Texture(args.freq, args.angle, args.amplitude)
    texture.check(R)
    if args.native < 8 * R:
        raise SystemExit(f"--native must be at least 8R = {8 * R}: rho is measured up to 8R")
    args.work.mkdir(parents=True, exist_ok=True)
    textured, twin = make_sets(args.work, args.images, args.native, texture)
    tasks = [t for s in args.seeds for t in seed_tasks(args.work, s, textured, twin, args.kimg1, args.kimg2, args.snap,
                                                   tuple(args.arms))]
    results: dict[int, dict] = {}
    lock = threading.Lock()

    def on_done(task: Task, done: set[str]) -> None:
        seed = int(task.name.split("/")[0])
        if not all(t.name in done for t in tasks if t.name.startswith(f"{seed}/")):
            return
        with lock:
            if seed in results:
                return
            results[seed] = {}
            start = time.perf_counter()
            results[seed] = measure_seed(args.work / f"seed{seed}", textured, texture, R, SCALES, args.n,
                                         [t.name.split("/")[1] for t in tasks if t.name.startswith(f"{seed}/")])
            if args.curve:
                results[seed]["curve"] = rho_curve(args.work / f"seed{seed}", textured, texture, R, args.n)
            print(f"seed {seed} ({time.perf_counter() - start:.0f} s to measure): "
                  + json.dumps({k: v for k, v in results[seed].items() if k != "curve"}), flush=True)

    start = time.perf_counter()
    run_tasks(tasks, args.jobs, args.work, on_done)
    print(f"\nall trainings and measures: {time.perf_counter() - start:.0f} s; "
          f"texture {texture.freq:g} cycles/canvas at {texture.angle:g} deg, amplitude {texture.amplitude:g}")
    print_table(results)
    summary = {"args": {k: str(v) for k, v in vars(args).items()}, "texture": asdict(texture), "seeds": results,
               "seconds": {t.name: t.seconds for t in tasks}}
    (args.work / "bench-mechanism.json").write_text(json.dumps(summary, indent=1))
    if args.figure:
        draw_figure(args.work / f"seed{args.seeds[0]}", textured, texture, R, args.figure)
        print(f"figure: {args.figure}")


def print_table(results: dict[int, dict]) -> None:
    rows = [("stage 1, rendered", "stage1", "rendered"), ("stage 1, R image upsampled (Lanczos-3)", "stage1", "upsampled"),
            ("stage 2", "stage2", "rendered"), ("stage 2 on the twin set", "stage2-twin", "rendered"),
            ("stage 2, teacher weight 0", "stage2-teacher0", "rendered"),
            ("stage 2, no scale conditioning", "stage2-noscale", "rendered")]
    seeds = sorted(results)
    print(f"\nrho: texture power generated / real, mean ± std over seeds {seeds}")
    print("| model | " + " | ".join(f"rho at {k}R" for k in SCALES) + " | distance from teacher at R |")
    print("| --- |" + " --- |" * (len(SCALES) + 1))
    for label, arm, kind in rows:
        if arm not in results[seeds[0]]:
            continue
        cells = [mean_std([results[s][arm][kind][str(k)] for s in seeds]) for k in SCALES]
        gap = [results[s][arm].get("teacher_gap") for s in seeds]
        cells.append(mean_std(gap) if all(g is not None for g in gap) else "")
        print(f"| {label} | " + " | ".join(cells) + " |")
    real = [results[s]["real"][str(4)] for s in seeds]
    print(f"| real patches: texture power at 4R (grey levels²) | {mean_std(real)} |")


if __name__ == "__main__":
    main()
