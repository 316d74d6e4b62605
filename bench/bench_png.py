"""The streaming PNG writer against pypng, the kept library that also writes by rows.

    .venv/bin/pip install pypng && .venv/bin/python bench/bench_png.py [--side 2048] [--repeats 5]

Both write the same photo-like RGB image (smooth structure plus grain) band by band into memory;
prints the median time and the size of each, and their ratios. pypng writes every row unfiltered
(filter type 0); training/generate/png.py uses the Sub filter, which numpy computes per band.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np

from training.generate.png import PngStream


def photo_like(side: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side]
    smooth = 127 + 100 * np.sin(x / 37.0)[..., None] * np.cos(y / 53.0)[..., None]
    return (smooth + rng.normal(0, 8, (side, side, 3))).clip(0, 255).astype(np.uint8)


def ours(image: np.ndarray, band: int = 256) -> bytes:
    sink = io.BytesIO()
    stream = PngStream(sink, image.shape[1], image.shape[0])
    for top in range(0, image.shape[0], band):
        stream.write(image[top:top + band])
    stream.close()
    return sink.getvalue()


def pypng(image: np.ndarray) -> bytes:
    import png

    sink = io.BytesIO()
    writer = png.Writer(image.shape[1], image.shape[0], greyscale=False, bitdepth=8, compression=6)
    writer.write(sink, (row.reshape(-1) for row in image))
    return sink.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    try:
        import png  # noqa: F401
    except ImportError:
        raise SystemExit("bench_png needs pypng: .venv/bin/pip install pypng") from None
    image = photo_like(args.side)
    results = {}
    for _ in range(args.repeats):  # alternate, so a busy moment falls on both
        for name, write in (("anyres PngStream", ours), ("pypng", pypng)):
            start = time.perf_counter()
            data = write(image)
            results.setdefault(name, []).append((time.perf_counter() - start, len(data)))
    base = statistics.median(t for t, _ in results["anyres PngStream"]), results["anyres PngStream"][0][1]
    for name, runs in results.items():
        seconds, size = statistics.median(t for t, _ in runs), runs[0][1]
        print(f"{name:18s} {seconds:6.3f} s  {size / 2**20:6.2f} MiB   time x{seconds / base[0]:.2f}  size x{size / base[1]:.2f}")


if __name__ == "__main__":
    main()
