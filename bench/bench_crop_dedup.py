"""The crop stage at scale, and what its signature costs at fetch.

    .venv/bin/python bench/bench_crop_dedup.py [--n 1000000] [--planted 1000] [--photos ../shared/photos]
        [--fetch-repeats 5] [--work /tmp/crop-bench]

1. Fetch cost. Over the photos, the fetch stage's per-image work with and without the signature:
   `admit` (probe: reduced decode, orientation, sha256, pHash) against `admit_decoded` plus
   `image_signature` (the window hashes, the thumbnail, the JPEG quality). Medians over repeats.
2. Scale. `--n` samples' stored signatures: random window hashes and thumbnails (distinct images
   hash like random bits), among them `--planted` true pairs made from the photos: a variant of a
   photo (a random 35-50% crop of it, mirrored or turned, so that variants differ) and its copy (a crop of 1-5% on
   all or two sides, or a watermark of 15-40% width at 30-85% opacity, re-encoded at q70-95),
   both through the real signature, at random rows. The table is written as a finished dataset
   keeps it (`work/signatures.parquet`, plus the metadata the stage reads), and a fresh process
   times reading it, the candidate search, the alignment checks and the clustering: the crop
   stage end to end (`AlignedDedup.plan`), with its peak memory. Recall is over the planted pairs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from calibrate_dedup import border_crop, jpeg, watermark  # noqa: E402

from curation.dedup.image_signature import SCHEMA, SIGNATURE_BYTES, THUMB_SIDE, WINDOWS, signature  # noqa: E402
from shards.intake.admission import FilterConfig, admit_decoded  # noqa: E402


def fetch_cost(paths: list[Path], repeats: int) -> dict:
    """Per image: the fetch stage's probe (`admit`), and the signature computed from what the
    probe decoded; both timed on each photo in turn, so that both see the same machine."""
    filters = FilterConfig()
    data = [p.read_bytes() for p in paths]
    probe, sign = [], []
    for _ in range(repeats):
        p_total = s_total = 0.0
        for d in data:
            t = time.perf_counter()
            decoded = admit_decoded(d, filters)
            t1 = time.perf_counter()
            signature(decoded.image, decoded.quantization)
            t2 = time.perf_counter()
            p_total += t1 - t
            s_total += t2 - t1
        probe.append(p_total / len(data))
        sign.append(s_total / len(data))
    b, s = statistics.median(probe) * 1e3, statistics.median(sign) * 1e3
    return {"photos": len(paths), "probe_ms": round(b, 2), "signature_ms": round(s, 2),
            "extra_fraction": round(s / b, 4)}


def planted_pairs(paths: list[Path], count: int, seed: int) -> list[tuple[dict, dict]]:
    rng = np.random.default_rng(seed)
    photos = []
    for p in paths:
        with Image.open(p) as im:
            im.draft("RGB", (im.width // 4, im.height // 4))
            photos.append(im.convert("RGB"))
    pairs = []
    turns = [None, *Image.Transpose]  # a variant is also mirrored or turned: more distinct variants
    for k in range(count):
        photo = photos[k % len(photos)]
        turn = turns[int(rng.integers(len(turns)))]
        photo = photo.transpose(turn) if turn is not None else photo
        w, h = photo.size
        f = rng.uniform(0.35, 0.5)
        x, y = rng.uniform(0, 1 - f) * w, rng.uniform(0, 1 - f) * h
        variant = photo.crop((int(x), int(y), int(x + f * w), int(y + f * h)))
        if rng.random() < 0.5:
            copy = border_crop(variant, rng.uniform(0.01, 0.05), str(rng.choice(["lrtb", "lt", "rb", "rt", "lb"])))
        else:
            copy = watermark(variant, rng.uniform(0.15, 0.4), rng.uniform(0.05, 0.1), rng.uniform(0.3, 0.85),
                             str(rng.choice(["lower right", "lower left", "upper left", "upper right"])))
        pairs.append((look(jpeg(variant, 92)), look(jpeg(copy, int(rng.integers(70, 96))))))
    return pairs


def look(data: bytes) -> dict:
    decoded = admit_decoded(data, FilterConfig(min_side=16))
    sig = signature(decoded.image, decoded.quantization)
    return {"windows": sig.windows, "thumb": sig.thumb, "quality": sig.quality,
            "width": decoded.info.width, "height": decoded.info.height}


def make_table(n: int, pairs: list[tuple[dict, dict]], seed: int) -> tuple[pa.Table, pa.Table, np.ndarray]:
    """Signatures and metadata of n samples, the planted pairs at random rows (returned)."""
    rng = np.random.default_rng(seed)
    windows = rng.integers(0, 256, size=(n, 8 * len(WINDOWS)), dtype=np.uint8)
    thumbs = rng.integers(0, 256, size=(n, THUMB_SIDE**2), dtype=np.uint8)
    width = rng.integers(800, 6000, size=n)
    height = rng.integers(600, 4000, size=n)
    rows = rng.choice(n, size=(len(pairs), 2), replace=False)
    for (a, b), (x, y) in zip(rows, pairs):
        for row, im in ((a, x), (b, y)):
            windows[row] = np.frombuffer(im["windows"], np.uint8)
            thumbs[row] = np.frombuffer(im["thumb"], np.uint8)
            width[row], height[row] = im["width"], im["height"]
    keys = pa.array([f"s{i:08d}" for i in range(n)])
    signatures = pa.table({"key": keys,
                           "windows": pa.FixedSizeBinaryArray.from_buffers(pa.binary(8 * len(WINDOWS)), n,
                                                                           [None, pa.py_buffer(windows.tobytes())]),
                           "thumb": pa.FixedSizeBinaryArray.from_buffers(pa.binary(THUMB_SIDE**2), n,
                                                                         [None, pa.py_buffer(thumbs.tobytes())]),
                           "quality": pa.nulls(n, pa.int16())}, schema=SCHEMA)
    meta = pa.table({"key": keys, "width": pa.array(width, pa.int64()), "height": pa.array(height, pa.int64()),
                     "format": pa.array(["jpeg"] * n), "nbytes": pa.array(width * height // 4, pa.int64()),
                     "source": pa.array(["url"] * n), "slice": pa.array(np.arange(n) // 256, pa.int64()),
                     "row": pa.array(np.arange(n) % 256, pa.int64())})
    return signatures, meta, rows


CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import pyarrow.parquet as pq
from curation import signature_files
from curation.dedup.crops import AlignedDedup, Signed, candidates

def peak_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

work = sys.argv[2]
t0 = time.perf_counter()
meta = pq.read_table(f"{work}/meta.parquet")
table = signature_files.attach(meta, signature_files.read(__import__("pathlib").Path(f"{work}/work/signatures.parquet")))
t1 = time.perf_counter()
stage = AlignedDedup()
signed = Signed.of(table)
t2 = time.perf_counter()
n_candidates = sum(1 for _ in candidates(signed.hashes, stage.radius))
t3 = time.perf_counter()
merges = stage.plan(table)
t4 = time.perf_counter()
print(json.dumps({"read_s": t1 - t0, "arrays_s": t2 - t1, "candidates_s": t3 - t2, "plan_s": t4 - t3,
                  "candidates": n_candidates, "merges": [[m.dropped[0], m.dropped[1], m.kept[0], m.kept[1]]
                  for m in merges], "peak_mb": peak_kb() / 1024}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--planted", type=int, default=1000)
    parser.add_argument("--photos", default=str(ROOT.parent / "shared" / "photos"))
    parser.add_argument("--fetch-repeats", type=int, default=5)
    parser.add_argument("--work", default="/tmp/crop-bench")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    paths = sorted(Path(args.photos).glob("*.jpg"))
    if len(paths) < 2:
        parser.error(f"need photos in {args.photos}")
    cost = fetch_cost(paths, args.fetch_repeats)
    print(f"fetch stage per image, median of {args.fetch_repeats} passes over {len(paths)} photos: "
          f"probe (decode, hashes, checks) {cost['probe_ms']} ms, signature {cost['signature_ms']} ms "
          f"(+{cost['extra_fraction']:.1%})")
    pairs = planted_pairs(paths, args.planted, args.seed)
    signatures, meta, rows = make_table(args.n, pairs, args.seed)
    work = Path(args.work)
    (work / "work").mkdir(parents=True, exist_ok=True)
    pq.write_table(signatures, work / "work" / "signatures.parquet")
    pq.write_table(meta, work / "meta.parquet")
    on_disk = (work / "work" / "signatures.parquet").stat().st_size
    print(f"signature: {SIGNATURE_BYTES} bytes per sample raw; the parquet file holds {on_disk / args.n:.0f} "
          f"bytes per sample ({on_disk / 2**20:.0f} MiB for {args.n:,})")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(work)], capture_output=True, text=True,
                         check=True)
    wall = time.perf_counter() - started
    result = json.loads(out.stdout)
    into = {a * 256 + b: c * 256 + d for a, b, c, d in result["merges"]}  # rows: slice * 256 + row

    def keeper(row: int) -> int:
        while row in into:
            row = into[row]
        return row

    found = sum(keeper(int(x)) == keeper(int(y)) for x, y in rows)
    # a pair not in one cluster, yet not two samples either: one of it merged into an image it was
    # checked against, another variant of the same photo (copies merge only into a direct partner)
    elsewhere = sum(keeper(int(x)) != keeper(int(y)) and (int(x) in into or int(y) in into) for x, y in rows)
    planted = {int(r) for r in rows.ravel()}
    extra = sum(1 for dropped in into if dropped not in planted)  # merges of rows no pair planted
    print(f"crop stage on {args.n:,} samples ({args.planted} planted pairs): read {result['read_s']:.1f} s, "
          f"arrays {result['arrays_s']:.1f} s, candidates {result['candidates_s']:.1f} s "
          f"({result['candidates']:,} pairs), the stage end to end (search again, checks, clusters) "
          f"{result['plan_s']:.1f} s; process {wall:.1f} s, peak memory {result['peak_mb']:.0f} MB")
    print(f"recall of planted pairs {found / len(rows):.4f} ({found}/{len(rows)} in one cluster; {elsewhere} more "
          f"merged into another variant of their photo; {len(rows) - found - elsewhere} left as two samples); "
          f"random rows merged {extra}")
    print(json.dumps({"fetch": cost, "n": args.n, "planted": args.planted, "bytes_on_disk_per_sample": on_disk / args.n,
                      **{k: v for k, v in result.items() if k != "merges"}, "recall": found / len(rows),
                      "merged_elsewhere": elsewhere, "random_rows_merged": extra, "process_s": wall}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
