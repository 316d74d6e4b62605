"""Shard write and read speed on real photos, against WebDataset's own reader.

    .venv/bin/python bench/bench_shards.py [--photos ../shared/photos] [--copies 20] [--repeats 5]

Writes the photos (each stored `--copies` times under distinct keys) into 64 MB shards, then
times: writing; streaming every sample with `shards` and with `webdataset.WebDataset` (the
baseline, same files, same run); and reading single samples by key through the index offset
against finding them by scanning their shard (the baseline without an index). Prints medians.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from shards import Dataset, DatasetWriter, WriterConfig
from shards.format.reader import group_samples, iter_members
from shards.intake.pack import image_files, pack_folder


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", default="../shared/photos")
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    pack_folder(args.photos, work / "src")
    source = Dataset(str(work / "src"))
    samples = list(source.iter_samples())
    copies = [(s.meta.__class__(**{**s.meta.to_record(), "key": f"{s.key}-{c}"}, extra=s.meta.extra), s.data)
              for c in range(args.copies) for s in samples]
    total_mb = sum(len(d) for _, d in copies) / 1e6
    print(f"{len(copies)} samples, {total_mb:.0f} MB, {len(list(image_files(Path(args.photos))))} distinct photos")

    def write(target=[0]):  # noqa: B006 (a counter: each repeat writes a new folder)
        target[0] += 1
        with DatasetWriter(work / f"out{target[0]}", WriterConfig(max_shard_bytes=64_000_000)) as writer:
            for meta, data in copies:
                writer.add(meta, data)
            writer.finalize()

    t_write = timed(write, args.repeats)
    ds = Dataset(str(work / "out1"))
    urls = [str(work / "out1" / name) for name in ds.shard_names]

    def read_shards():
        assert sum(1 for _ in ds.iter_samples()) == len(copies)

    def read_webdataset():
        import webdataset as wds

        assert sum(1 for _ in wds.WebDataset(urls, shardshuffle=False)) == len(copies)

    t_ours, t_wds = timed(read_shards, args.repeats), timed(read_webdataset, args.repeats)
    keys = random.Random(0).sample([m.key for m, _ in copies], 50)
    ds.index  # noqa: B018 (load the index outside the timing)

    def by_offset():
        for key in keys:
            ds.get(key)

    def by_scan():
        for key in keys:
            shard = ds.row(key)["shard"]
            with open(work / "out1" / shard, "rb") as f:
                next(s for s in group_samples(iter_members(f), shard) if s.key == key)

    t_get, t_scan = timed(by_offset, args.repeats), timed(by_scan, args.repeats)
    print(f"write          {total_mb / t_write:8.0f} MB/s   (median of {args.repeats})")
    print(f"stream shards  {total_mb / t_ours:8.0f} MB/s   webdataset {total_mb / t_wds:6.0f} MB/s   "
          f"ratio {t_wds / t_ours:.2f}x")
    print(f"get by key     {t_get / len(keys) * 1e3:8.2f} ms      scan shard {t_scan / len(keys) * 1e3:6.2f} ms   "
          f"ratio {t_scan / t_get:.0f}x")


if __name__ == "__main__":
    main()
