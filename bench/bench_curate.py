"""anyres-curate against img2dataset over the same URL list served on 127.0.0.1.

    .venv/bin/python bench/bench_curate.py [--photos ../shared/photos] [--n 2000] [--repeats 3]
        [--img2dataset /tmp/i2d/bin/img2dataset]

Makes `--n` distinct JPEGs of 1 to 16 megapixels (log-uniform) from the real photos: random
crops, rescaled, quality 85..95, half of them progressive; cached in a temp folder between
runs. Serves them with a threaded HTTP server in another process, then times, in turn and
`--repeats` times each: `anyres-curate urls` (embedded Ray, 2 workers), and img2dataset (its
own venv: it pins webdataset<0.3) with `resize_mode=no` (decode and re-encode at the same
size) and with `disable_all_reencoding=True` (bytes only). Reports the median wall time,
images/s, images/s per core, and the peak resident memory of each tool's whole process tree.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

CORES = 2


def make_one(args: tuple[int, str, str]) -> int:
    i, photo, out = args
    rng = random.Random(i)
    with Image.open(photo) as im:
        im = im.convert("RGB")
    target_mp = math.exp(rng.uniform(math.log(1.0), math.log(16.0)))
    aspect = rng.uniform(0.6, 1.8)
    w, h = int(math.sqrt(target_mp * 1e6 * aspect)), int(math.sqrt(target_mp * 1e6 / aspect))
    # A random crop of the photo with the target aspect, then rescaled to the target size.
    crop_w = min(im.width, int(im.height * aspect))
    crop_w = int(crop_w * rng.uniform(0.6, 1.0))
    crop_h = int(crop_w / aspect)
    x, y = rng.randint(0, im.width - crop_w), rng.randint(0, im.height - crop_h)
    image = im.crop((x, y, x + crop_w, y + crop_h)).resize((w, h), Image.Resampling.BILINEAR)
    image.save(out, "JPEG", quality=rng.randint(85, 95), progressive=bool(i % 2))
    return os.path.getsize(out)


def make_corpus(photos: Path, n: int) -> Path:
    folder = Path(tempfile.gettempdir()) / f"anyres-bench-curate-{n}"
    if (folder / "done").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    sources = sorted(str(p) for p in photos.glob("*.jpg"))
    jobs = [(i, sources[i % len(sources)], str(folder / f"img-{i:05d}.jpg")) for i in range(n)]
    with ProcessPoolExecutor(CORES) as pool:
        total = sum(pool.map(make_one, jobs, chunksize=8))
    (folder / "done").write_text(str(total))
    return folder


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def timed_run(cmd: list[str], env: dict | None = None) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()[-2000:]}")
    return elapsed, peak


def count_stored(name: str, out: Path) -> int:
    """Images each tool fully processed: stored, or (anyres) merged as a duplicate."""
    if name == "anyres":
        # The corpus's crops of 15 photos overlap, and near-dedup rightly merges some of them:
        # a merged image was fetched, decoded and hashed like a stored one, so it counts.
        manifest = json.loads((out / "dataset.json").read_text())
        merged = manifest["curation"]["rejects"]
        return manifest["num_samples"] + merged.get("near-duplicate", 0) + merged.get("duplicate", 0)
    # img2dataset: one stats file per shard, with its successes.
    return sum(json.loads(p.read_text())["successes"] for p in out.glob("*_stats.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", default="../shared/photos")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--img2dataset", default="/tmp/i2d/bin/img2dataset")
    parser.add_argument("--only", choices=("anyres", "i2d-no", "i2d-bytes"), action="append")
    args = parser.parse_args()
    corpus = make_corpus(Path(args.photos), args.n)
    files = sorted(corpus.glob("img-*.jpg"))
    total_bytes = sum(f.stat().st_size for f in files)
    megapixels = []
    for f in files:
        with Image.open(f) as im:
            megapixels.append(im.width * im.height / 1e6)
    print(f"{len(files)} JPEGs, {total_bytes / 1e6:.0f} MB, {min(megapixels):.1f}..{statistics.median(megapixels):.1f}"
          f"..{max(megapixels):.1f} MP (min, median, max), {sum(1 for f in files if int(f.stem[4:]) % 2)} progressive")
    work = Path(tempfile.mkdtemp(prefix="bench-curate-"))
    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", str(corpus)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(server.stdout.readline().split("port ")[1].split()[0])
    listing = work / "urls.txt"
    listing.write_text("".join(f"http://127.0.0.1:{port}/{f.name}\n" for f in files))
    curate = str(Path(sys.executable).with_name("anyres-curate"))
    runs = {
        "anyres": lambda out: [curate, "urls", str(listing), "--out", out, "--workers", str(CORES),
                               "--per-host", "16", "--threads", "8", "--slice-size", "128"],
        "i2d-no": lambda out: [args.img2dataset, f"--url_list={listing}", "--input_format=txt",
                               f"--output_folder={out}", f"--processes_count={CORES}", "--thread_count=16",
                               "--resize_mode=no", "--output_format=webdataset", "--enable_wandb=False"],
        "i2d-bytes": lambda out: [args.img2dataset, f"--url_list={listing}", "--input_format=txt",
                                  f"--output_folder={out}", f"--processes_count={CORES}", "--thread_count=16",
                                  "--disable_all_reencoding=True", "--output_format=webdataset",
                                  "--enable_wandb=False"],
    }
    names = [name for name in runs if not args.only or name in args.only]
    times: dict[str, list[float]] = {name: [] for name in names}
    peaks: dict[str, list[int]] = {name: [] for name in names}
    try:
        # Interleaved (each tool once per round), so that a noisy minute hits all of them.
        for r in range(args.repeats):
            for name in names:
                out = work / f"{name}-{r}"
                elapsed, peak = timed_run(runs[name](str(out)))
                stored = count_stored(name, out)
                if stored != len(files):
                    raise SystemExit(f"{name} processed {stored} of {len(files)} images: not comparable")
                times[name].append(elapsed)
                peaks[name].append(peak)
                print(f"{name} run {r}: {elapsed:.1f} s, peak {peak / 2**20:.0f} MiB, {stored} processed (stored or merged as duplicates)", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)
    results = {}
    for name in names:
        t = statistics.median(times[name])
        results[name] = {"seconds": round(t, 1), "images_per_s": round(len(files) / t, 1),
                         "per_core": round(len(files) / t / CORES, 1),
                         "peak_mib": round(statistics.median(peaks[name]) / 2**20)}
    print(json.dumps(results, indent=2))
    if "anyres" in results:
        for base in ("i2d-no", "i2d-bytes"):
            if base in results:
                print(f"anyres / {base}: {results['anyres']['images_per_s'] / results[base]['images_per_s']:.2f}x")


if __name__ == "__main__":
    main()
