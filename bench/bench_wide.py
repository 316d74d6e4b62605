"""Would wider late layers teach the texture faster? `tiny` against a wider generator, at equal wall time.

    nice .venv/bin/python bench/bench_wide.py --work /tmp/bench-mechanism [--seed 0] [--kimg2 12]
        [--channel-bases 512,1024] [--kimg1 3] [--compare NAME=STAGE2_RUN ...]

On bench_mechanism.py's textured set (made there, under the same --work): `tiny`'s generator has
27, 16 and 16 channels in its last three layers (channel_base 512); --channel-base 1024 gives
them 32, 32 and 32 (the issue's suspect: detail above ~0.2 cycles per pixel can only be made
there). Each variant trains stage 1 for --kimg1 and then stage 2 (the bench's settings: --s-min
2R, teacher weight 5) for --kimg2, in this process, one thread, snapshots every 0.64 kimg.
Prints rho at 4R (bench_mechanism's measure) against kimg and against the wall seconds the run
had spent by then (stats.jsonl's seconds per kimg, summed), and compares them at the same time
spent, not the same images shown. --compare adds a stage-2 run made elsewhere with the same
settings (e.g. one of bench_mechanism's, WORK/seed0/stage2) instead of training it again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from mechanism_data import Texture  # noqa: E402
from mechanism_measure import generated, real_patches, tone  # noqa: E402

from training.checkpoint import load_generator  # noqa: E402
from training.commands.eval import snapshot_kimg  # noqa: E402
from training.run.config import PRESETS  # noqa: E402
from training.run.loop import train  # noqa: E402

R = 32


def variant(data: Path, out: Path, channel_base: int, seed: int, **fields) -> object:
    base = PRESETS["tiny"]
    g = dataclasses.replace(base.g, channel_base=channel_base)
    loader = dataclasses.replace(base.loader, data=str(data), seed=seed)
    return dataclasses.replace(base, out=str(out), g=g, loader=loader, report=False, **fields)


def wall_seconds(run: Path) -> dict[float, float]:
    """kimg -> the seconds the run had spent when it got there (ticks' seconds per kimg, summed)."""
    seconds, last, out = 0.0, 0.0, {}
    for line in (run / "stats.jsonl").read_text().splitlines():
        tick = json.loads(line)
        seconds += tick["sec_per_kimg"] * (tick["kimg"] - last)
        last = tick["kimg"]
        out[round(tick["kimg"], 3)] = seconds
    return out


def curve(run: Path, data: Path, texture: Texture, n: int) -> list[dict]:
    images, transform, s = real_patches(data, 4 * R, n)
    real = tone(images, texture, 4 * R)
    spent = wall_seconds(run)
    rows = []
    for path in sorted(run.glob("network-snapshot-*.pt"), key=snapshot_kimg):
        kimg = snapshot_kimg(path)
        seconds = min(spent.items(), key=lambda item: abs(item[0] - kimg))[1]
        rho = tone(generated(load_generator(path), "patch", transform, s), texture, 4 * R) / real
        rows.append({"kimg": kimg, "seconds": seconds, "rho_4R": rho})
    return rows


def at_time(rows: list[dict], seconds: float) -> float:
    """rho at the last snapshot made within `seconds`."""
    within = [r for r in rows if r["seconds"] <= seconds * 1.001]
    return within[-1]["rho_4R"] if within else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-mechanism"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kimg2", type=float, default=12.0, help="stage 2 length of each variant")
    parser.add_argument("--channel-bases", default="512,1024", help="generators to train (tiny's is 512)")
    parser.add_argument("--compare", nargs="*", default=[], metavar="NAME=RUN", help="stage-2 runs made elsewhere")
    parser.add_argument("--kimg1", type=float, default=3.0)
    parser.add_argument("--n", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = args.work / "data-textured"
    if not (data / "dataset.json").exists():
        raise SystemExit(f"{data}: run bench_mechanism.py with --work {args.work} first (it makes the data)")
    texture = Texture()
    results = {}
    for name, run in (c.split("=", 1) for c in args.compare):
        results[name] = {"channel_base": load_generator(Path(run) / "checkpoint.pt").cfg.channel_base,
                         "curve": curve(Path(run), data, texture, args.n)}
    for channel_base in (int(c) for c in args.channel_bases.split(",") if c):
        name = f"channel_base-{channel_base}"
        root = args.work / "wide" / name
        train(variant(data, root / "stage1", channel_base, args.seed, kimg=args.kimg1))
        stage2 = variant(data, root / "stage2", channel_base, args.seed, stage="patch", kimg=args.kimg2,
                         teacher=str(root / "stage1" / "checkpoint.pt"), tick_kimg=0.32, snap_ticks=5)
        stage2 = dataclasses.replace(stage2, loader=dataclasses.replace(
            stage2.loader, stream=dataclasses.replace(stage2.loader.stream, s_min=2.0 * R)))
        train(stage2)
        results[name] = {"channel_base": channel_base, "curve": curve(root / "stage2", data, texture, args.n)}
        print(name, json.dumps(results[name]), flush=True)
    (args.work / "wide" / "bench-wide.json").write_text(json.dumps(results, indent=1))
    budget = min(r["curve"][-1]["seconds"] for r in results.values())
    print(f"\nrho at 4R after {budget:.0f} s of stage 2 on one thread (the shortest run's length):")
    print("| variant | kimg in that time | rho at 4R then | at the end (kimg: rho) |")
    print("| --- | --- | --- | --- |")
    for name, r in results.items():
        within = [row for row in r["curve"] if row["seconds"] <= budget * 1.001]
        kimg = within[-1]["kimg"] if within else 0.0
        last = r["curve"][-1]
        print(f"| {name} | {kimg:g} | {at_time(r['curve'], budget):.3g} | {last['kimg']:g}: {last['rho_4R']:.3g} |")

if __name__ == "__main__":
    main()
