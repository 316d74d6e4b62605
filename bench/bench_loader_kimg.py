"""The loader alone, in the units training reports: seconds per thousand images (s/kimg).

    nice .venv/bin/python bench/bench_loader_kimg.py --data DATASET [--size 32] [--s-min 64]
        [--views 160] [--cache-mb 0 256]

One process, one thread, batches of 16 as the tiny preset draws them: the global stream at R =
--size and the patch stream (p = --size, S in [--s-min, native side]), each with the decode
cache off and on. Compare with a run's sec_per_kimg (stats.jsonl) to see how much of a step the
loader takes. Used for the learning benchmark's choice of photo size (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import time

import torch

from training.loader.pipeline import LoaderConfig, PatchLoader
from training.loader.sampler import StreamConfig


def seconds_per_kimg(data: str, stream: StreamConfig, views: int, cache_mb: int) -> float:
    config = LoaderConfig(data, stream, batch_size=16, seed=0, shuffle_buffer=16, epoch_patches=views,
                          decode_cache_mb=cache_mb)
    start, n = time.perf_counter(), 0
    for batch in PatchLoader(config, rank=0, world_size=1):
        n += len(batch)
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--size", type=int, default=32, help="R of the global stream, p of the patch stream")
    parser.add_argument("--s-min", type=float, default=64)
    parser.add_argument("--views", type=int, default=160, help="images or patches timed per row")
    parser.add_argument("--cache-mb", type=int, nargs="+", default=[0, 256])
    args = parser.parse_args()
    torch.set_num_threads(1)
    streams = {"global": StreamConfig("global", size=args.size),
               "patch": StreamConfig("patch", size=args.size, s_min=args.s_min)}
    for name, stream in streams.items():
        for cache in args.cache_mb:
            rate = seconds_per_kimg(args.data, stream, args.views, cache)
            print(f"{name:7s} cache {cache:4d} MiB: {rate:7.1f} s/kimg ({args.views} views)")


if __name__ == "__main__":
    main()
