"""The GPU check: does sg3t-256 train in bf16 on one CUDA device, how fast, in how much memory.

    bash bench/gpu_check.sh [PHOTOS]          # on the device machine: 10 minutes at most
    python bench/gpu_check.py --preset tiny   # the same path on a CPU, to test the script

Packs a small dataset from the photos (../shared/photos by default), trains 20 steps of stage
`global` and then 20 of stage `patch` (teacher: the stage-1 checkpoint) through the real CLI and
loader, and prints one JSON object: per stage the median tick's step time, s/kimg, images/s and
the peak device memory; then whether the last snapshot loads back and renders a 2R image by
tiles. It exits non-zero, loudly, on any exception (a dtype error under autocast among them),
on a non-finite loss or image, or when a snapshot does not load back. The first tick absorbs
warm-up (cuDNN autotuning, allocator growth); the figures come from the ticks after it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shards.tools.cli import main as shards_main  # noqa: E402
from training import checkpoint  # noqa: E402
from training.commands.train import main as train_main  # noqa: E402
from training.networks import resample  # noqa: E402
from training.networks.render import render_full  # noqa: E402
from training.run.config import PRESETS  # noqa: E402

STEPS, TICKS = 20, 4


def fail(message: str) -> None:
    print(f"gpu_check: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def train_stage(args: argparse.Namespace, data: Path, run: Path, stage: str, teacher: Path | None) -> dict:
    batch = args.batch or PRESETS[args.preset].batch
    kimg = STEPS * batch / 1000
    argv = ["train", "--data", str(data), "--out", str(run), "--preset", args.preset, "--stage", stage,
            "--batch", str(batch), "--kimg", f"{kimg}", "--tick-kimg", f"{kimg / TICKS}", "--snap-ticks", str(TICKS)]
    if teacher is not None:
        argv += ["--teacher", str(teacher)]
    shutil.rmtree(run, ignore_errors=True)  # a rerun with the same --work starts its stages afresh
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    code = train_main(argv)
    if code != 0:
        fail(f"stage {stage} exited {code}")
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    for r in records:
        losses = [r[k] for k in ("loss_G", "loss_D", "teacher") if r.get(k) is not None]
        if not all(math.isfinite(v) for v in losses):
            fail(f"stage {stage}: non-finite loss at step {r['step']}: {r}")
    timed = records[1:] or records
    sec_per_kimg = statistics.median(r["sec_per_kimg"] for r in timed)
    return {"steps": records[-1]["step"], "batch": batch, "step_s": round(sec_per_kimg * batch / 1000, 4),
            "sec_per_kimg": round(sec_per_kimg, 2), "images_per_sec": round(1000 / sec_per_kimg, 2),
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
            "wall_s": round(time.perf_counter() - started, 1), "loss_G": records[-1]["loss_G"],
            "loss_D": records[-1]["loss_D"]}


def check_snapshot(run: Path, device: torch.device) -> dict:
    snapshots = sorted(run.glob("network-snapshot-*.pt"))
    if not snapshots:
        fail(f"no snapshot in {run}")
    g = checkpoint.load_generator(snapshots[-1]).to(device)
    saved = checkpoint.load(run / checkpoint.CHECKPOINT)["trainer"]["G_ema"]
    if not all(torch.equal(v.cpu(), saved[k]) for k, v in g.state_dict().items()):
        fail(f"{snapshots[-1].name} does not hold the G_ema of the checkpoint written with it")
    r = g.cfg.resolution
    started = time.perf_counter()
    with torch.no_grad():
        image = render_full(g, g.mapping(torch.randn(1, g.cfg.z_dim, device=device)), 2 * r, tile=r)
    if not torch.isfinite(image).all():
        fail("the snapshot renders non-finite pixels")
    return {"snapshot": snapshots[-1].name, "loads": True, "render_2R_s": round(time.perf_counter() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default=str(ROOT.parent / "shared" / "photos"))
    parser.add_argument("--preset", default="sg3t-256", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, help="default: the preset's (32 for sg3t-256)")
    parser.add_argument("--work", help="working folder (default: a temporary one)")
    parser.add_argument("--resample", choices=("auto", "dense", "polyphase"), default="auto",
                        help="how the synthesis filters run (networks/resample.py): compare them on a GPU")
    args = parser.parse_args()
    resample.STRATEGY = args.resample
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu_check-"))
    data = work / "photos"
    if not data.exists() and shards_main(["pack", args.photos, str(data), "--shard-size", "64MB"]) != 0:
        fail(f"could not pack {args.photos}")
    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
              "preset": args.preset, "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
              "resample": args.resample}
    result["global"] = train_stage(args, data, work / "global", "global", None)
    result["patch"] = train_stage(args, data, work / "patch", "patch", work / "global" / checkpoint.CHECKPOINT)
    result["snapshot"] = check_snapshot(work / "patch", device)
    text = json.dumps(result, indent=2)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
