"""Patch loader speed and accuracy on real photos: the fast path against the paper-style reference.

    .venv/bin/python bench/bench_loader.py --data /tmp/photos-ds [--patches 96] [--repeats 3]

(make the dataset with `.venv/bin/anyres-shards pack ../shared/photos /tmp/photos-ds`). One
process, one thread: patches per second per core through the whole loader (tar streaming,
decode, render, shuffle, collate), p = 256, S uniform in [256, native side]. Modes, all in the
same run:

  reference    full decode, orient, Lanczos resize of the whole canvas to S, crop (the paper's code)
  fast K=1     reduced JPEG decode at the window's density, crop, orient the crop, Lanczos window
  fast K=k     the same, k patches drawn per decode (the decode reduction is the finest they need)
  +cache       the default patch stream and the global stream with the loader's decode cache
               (decode_cache.py): what a small dataset that comes round again costs

Then the accuracy of each fast mode against the reference on the same draws (PSNR), and what
drawing k patches per decode costs in diversity: distinct images per batch after the shuffle
buffer, simulated on a stream of distinct images.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np
import torch

from shards import Dataset
from training.loader.decode import decode, oriented, psnr, render_reference
from training.loader.pipeline import LoaderConfig, PatchLoader
from training.loader.sampler import StreamConfig, draw_patches, render_sample


def loader_rate(data: str, stream: StreamConfig, patches: int, repeats: int, buffer: int, workers: int = 0,
                cache_mb: int = 0) -> float:
    # The decode cache is off unless asked for: 96 patches of 15 photos would otherwise time
    # cache hits, not the decode path each mode stands for.
    rates = []
    for repeat in range(repeats):
        config = LoaderConfig(data, stream, batch_size=32, epoch_patches=patches, shuffle_buffer=buffer, seed=repeat,
                              num_workers=workers, decode_cache_mb=cache_mb)
        loader = PatchLoader(config, rank=0, world_size=1)
        start = time.perf_counter()
        n = sum(len(batch) for batch in loader)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def accuracy(ds: Dataset, stream: StreamConfig, draws_wanted: int) -> list[float]:
    """PSNR of fast-path patches against the reference rendering of the same draws."""
    samples = list(ds.iter_samples())
    rng, scores = np.random.default_rng(1), []
    while len(scores) < draws_wanted:
        sample = samples[len(scores) // stream.per_image % len(samples)]
        meta = sample.meta
        state = rng.bit_generator.state
        fast = render_sample(meta, sample.data, stream, rng)
        rng.bit_generator.state = state  # the same draws again, for the reference
        draws = draw_patches(meta.width, meta.height, stream, rng)
        full = oriented(decode(sample.data, meta.orientation))
        scores += [psnr(f.pixels, render_reference(full, d)) for f, d in zip(fast, draws)]
    return scores


def distinct_per_batch(k: int, buffer: int, batch: int = 32, images: int = 20000, seed: int = 0) -> tuple[float, float]:
    """Mean distinct images in a batch, and the share of batches holding some image twice."""
    import webdataset as wds

    stream = (i for i in range(images) for _ in range(k))
    shuffled = list(wds.shuffle(buffer, initial=buffer, rng=random.Random(seed))(stream))
    batches = [shuffled[i:i + batch] for i in range(0, len(shuffled) - batch + 1, batch)]
    distinct = [len(set(b)) for b in batches]
    return statistics.mean(distinct), sum(d < batch for d in distinct) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/tmp/photos-ds")
    parser.add_argument("--patches", type=int, default=96, help="patches per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ks", default="1,2,4,8", help="patches per decode to time")
    parser.add_argument("--buffer", type=int, default=512, help="shuffle buffer, in patches")
    parser.add_argument("--accuracy-draws", type=int, default=120)
    parser.add_argument("--workers", type=int, default=0,
                        help="also time the default patch stream through a DataLoader with this many workers")
    parser.add_argument("--diversity-buffers", default="512,2048,8192", help="shuffle buffers to simulate")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ks = [int(k) for k in args.ks.split(",")]
    ds = Dataset(args.data)
    print(f"{len(ds)} images, p=256, S uniform in [256, native side], {args.patches} patches x {args.repeats} repeats")
    reference = loader_rate(args.data, StreamConfig(reference=True, patches_per_image=1), args.patches, args.repeats, args.buffer)
    print(f"{'reference':<14}{reference:8.2f} patches/s/core")
    for k in ks:
        rate = loader_rate(args.data, StreamConfig(patches_per_image=k), args.patches, args.repeats, args.buffer)
        print(f"{'fast K=' + str(k):<14}{rate:8.2f} patches/s/core   {rate / reference:5.2f}x reference")
    rate = loader_rate(args.data, StreamConfig(stream="global"), args.patches, args.repeats, args.buffer)
    print(f"{'global R=256':<14}{rate:8.2f} patches/s/core   (whole canvas, 1 per decode)")
    for name, stream in (("fast K=4", StreamConfig()), ("global R=256", StreamConfig(stream="global"))):
        rate = loader_rate(args.data, stream, args.patches, args.repeats, args.buffer, cache_mb=256)
        print(f"{name + ' +cache':<14}{rate:8.2f} patches/s/core   (decode cache of 256 MiB: each photo "
              f"comes round {args.patches / stream.per_image / len(ds):.1f} times per run)")
    if args.workers:
        rate = loader_rate(args.data, StreamConfig(), args.patches * args.workers, args.repeats, args.buffer,
                           args.workers)
        print(f"{'default, ' + str(args.workers) + ' workers':<14}{rate:8.2f} patches/s in all "
              f"({rate / args.workers:.2f} per worker)")
    for k in ks:
        scores = np.array(accuracy(ds, StreamConfig(patches_per_image=k), args.accuracy_draws))
        finite = scores[np.isfinite(scores)]
        print(f"PSNR fast K={k} vs reference over {len(scores)} draws: median {np.median(scores):.1f} dB, "
              f"5th percentile {np.percentile(scores, 5):.1f} dB, min {finite.min():.1f} dB, "
              f"identical {np.isinf(scores).sum()}")
    for buffer in (int(b) for b in args.diversity_buffers.split(",")):
        for k in ks:
            mean, repeated = distinct_per_batch(k, buffer)
            print(f"diversity K={k}, buffer {buffer}: {mean:.2f} distinct images per batch of 32, "
                  f"{repeated:.1%} of batches hold an image twice")


if __name__ == "__main__":
    main()
