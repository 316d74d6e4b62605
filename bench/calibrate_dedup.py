"""Calibrate the near-duplicate radius: pHash distances of true copies against distinct images.

    .venv/bin/python bench/calibrate_dedup.py [--photos ../shared/photos [MORE ...]] [--radius 0..16]
        [--json calibration.json]

From every real photo it makes the copies a scrape meets: downscales to 1/2, 1/4 and 1/8, JPEG
re-encodes at quality 60 to 95, border crops of 2 to 5%, mild brightness and contrast changes,
and a watermark-sized overlay. Each (original, copy) pair is a positive. Negatives are every
pair of images made from two different photos (originals and copies alike), and pairs of
distinct crops of one photo (a 3x3 grid of tiles, and crops half overlapping), the hardest
case for a global hash. The pHash is the project's own (`shards.probe.probe_image`), computed
from the encoded bytes exactly as curation does. Prints recall per transformation and the
false-positive rate per negative kind at each radius, and the largest radius without a false
positive at scale, which is the default `--dedup-radius`: the distinct-photo distances are fitted
with a normal distribution, and the chosen radius is the largest whose fitted tail predicts at
most `--max-false` falsely merged pairs among a million images (5e11 pairs), far more pairs than
any calibration set can hold; of radii that find the same copies, the smallest.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from shards.probe import probe_image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def border_crop(image: Image.Image, fraction: float, sides: str = "lrtb") -> Image.Image:
    w, h = image.size
    dx, dy = round(w * fraction), round(h * fraction)
    return image.crop(("l" in sides and dx, "t" in sides and dy, w - ("r" in sides and dx),
                       h - ("b" in sides and dy)))


def watermark(image: Image.Image, text: str = "(c) example.com") -> Image.Image:
    """A semi-opaque box with text in the lower right corner, about 25% x 6% of the image."""
    out = image.convert("RGBA")
    w, h = out.size
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    box = (int(w * 0.72), int(h * 0.91), int(w * 0.97), int(h * 0.97))
    draw.rectangle(box, fill=(255, 255, 255, 140))
    draw.text((box[0] + 8, box[1] + 4), text, fill=(0, 0, 0, 220), font_size=max(10, (box[3] - box[1]) // 2))
    return Image.alpha_composite(out, layer).convert("RGB")


def copies(image: Image.Image) -> dict[str, bytes]:
    """The transformed copies of one photo, by transformation name."""
    w, h = image.size
    out = {}
    for d in (2, 4, 8):
        out[f"downscale 1/{d}"] = jpeg(image.resize((w // d, h // d), Image.Resampling.LANCZOS))
    half = image.resize((w // 2, h // 2), Image.Resampling.LANCZOS)  # re-encodes at a web size
    for q in (60, 75, 85, 95):
        out[f"jpeg q{q}"] = jpeg(half, q)
    for f in (0.02, 0.035, 0.05):
        out[f"border crop {f:.1%} all sides"] = jpeg(border_crop(half, f))
    out["border crop 5% left+top"] = jpeg(border_crop(half, 0.05, "lt"))
    for factor in (0.85, 1.15):
        out[f"brightness x{factor}"] = jpeg(ImageEnhance.Brightness(half).enhance(factor))
        out[f"contrast x{factor}"] = jpeg(ImageEnhance.Contrast(half).enhance(factor))
    out["watermark overlay"] = jpeg(watermark(half))
    out["downscale 1/4 + q70 + crop 2%"] = jpeg(border_crop(image.resize((w // 4, h // 4)), 0.02), 70)
    return out


def crops(image: Image.Image) -> tuple[list[bytes], list[tuple[bytes, bytes]]]:
    """Distinct crops of one photo: a 3x3 grid of tiles, and pairs of crops half overlapping."""
    w, h = image.size
    tiles = [jpeg(image.crop((i * w // 3, j * h // 3, (i + 1) * w // 3, (j + 1) * h // 3)).resize((w // 6, h // 6)))
             for j in range(3) for i in range(3)]
    halves = []
    for fx, fy in ((0.25, 0.0), (0.0, 0.25), (0.25, 0.25)):
        a = image.crop((0, 0, w // 2, h // 2))
        b = image.crop((int(w * fx), int(h * fy), int(w * fx) + w // 2, int(h * fy) + h // 2))
        halves.append((jpeg(a.resize((w // 4, h // 4))), jpeg(b.resize((w // 4, h // 4)))))
    return tiles, halves


def phash(data: bytes) -> int:
    return int(probe_image(data).phash, 16)


def measure(path: str) -> dict:
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        image = im.convert("RGB")
    original = phash(data)
    made = copies(image)
    tiles, halves = crops(image)
    return {"photo": Path(path).name, "original": original,
            "copies": {name: phash(b) for name, b in made.items()},
            "tiles": [phash(b) for b in tiles], "halves": [(phash(a), phash(b)) for a, b in halves]}


def distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def tables(results: list[dict]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    positives: dict[str, list[int]] = {}
    for r in results:
        for name, h in r["copies"].items():
            positives.setdefault(name, []).append(distance(r["original"], h))
    negatives: dict[str, list[int]] = {"distinct photos": [], "distinct tiles of one photo": [],
                                       "crops of one photo, half overlapping": []}
    every = [[r["original"], *r["copies"].values()] for r in results]
    for a, b in itertools.combinations(range(len(results)), 2):
        negatives["distinct photos"] += [distance(x, y) for x in every[a] for y in every[b]]
    for r in results:
        negatives["distinct tiles of one photo"] += [distance(x, y) for x, y in itertools.combinations(r["tiles"], 2)]
        negatives["crops of one photo, half overlapping"] += [distance(x, y) for x, y in r["halves"]]
    return positives, negatives


def report(positives, negatives, radii, chosen: int) -> dict:
    print("\nrecall of true copies (fraction within radius); n = pairs, max = largest distance seen")
    print("| transformation | n | median | max | " + " | ".join(f"r={r}" for r in radii) + " |")
    for name, d in positives.items():
        d = np.array(d)
        print(f"| {name} | {d.size} | {np.median(d):.0f} | {d.max()} | "
              + " | ".join(f"{np.mean(d <= r):.2f}" for r in radii) + " |")
    print("\nfalse positives among distinct images (count within radius); min = smallest distance seen")
    print("| negative pairs | n | min | median | " + " | ".join(f"r={r}" for r in radii) + " |")
    for name, d in negatives.items():
        d = np.array(d)
        print(f"| {name} | {d.size} | {d.min()} | {np.median(d):.0f} | "
              + " | ".join(f"{int(np.sum(d <= r))}" for r in radii) + " |")
    pos = np.concatenate([np.array(v) for v in positives.values()])
    neg = np.concatenate([np.array(v) for v in negatives.values()])
    summary = {}
    for r in radii:
        tp, fp = int(np.sum(pos <= r)), int(np.sum(neg <= r))
        summary[r] = {"recall": tp / pos.size, "precision": tp / max(tp + fp, 1), "false_positives": fp}
    print("\n| radius | recall (all copies) | precision (all pairs) | false positives |")
    for r, s in summary.items():
        mark = " (chosen)" if r == chosen else ""
        print(f"| {r}{mark} | {s['recall']:.3f} | {s['precision']:.4f} | {s['false_positives']} |")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", nargs="+", default=[str(ROOT.parent / "shared" / "photos")],
                        help="folders (their *.jpg) and image files, e.g. scikit-image's data photos")
    parser.add_argument("--radius", default="0..16", help="radii to report, LOW..HIGH")
    parser.add_argument("--max-false", type=float, default=1000,
                        help="false pairs allowed per million images, by the fitted tail (default 1000)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="write the distances here")
    args = parser.parse_args(argv)
    paths = [str(q) for p in map(Path, args.photos) for q in (sorted(p.glob("*.jpg")) if p.is_dir() else [p])]
    if len(paths) < 2:
        parser.error(f"need at least two photos in {' '.join(args.photos)}")
    low, high = (int(x) for x in args.radius.split(".."))
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(measure, paths))
    positives, negatives = tables(results)
    closest = min(min(d) for d in negatives.values())
    distinct = np.array(negatives["distinct photos"], dtype=float)
    mean, std = distinct.mean(), distinct.std()
    pairs = 1e6 * (1e6 - 1) / 2
    # A few thousand distinct pairs say nothing about a tail of 5e11: the fit does.
    expected = {r: pairs * 0.5 * math.erfc((mean - (r + 0.5)) / (std * math.sqrt(2))) for r in range(65)}
    chosen = max((r for r in range(closest) if expected[r] <= args.max_false), default=0)
    # pHash distances come out even (half the bits are set): a radius that finds no more copies
    # than a smaller one buys only false pairs and search time
    found = np.concatenate([np.array(v) for v in positives.values()])
    chosen = min(r for r in range(chosen + 1) if np.sum(found <= r) == np.sum(found <= chosen))
    print(f"{len(paths)} photos; distinct-photo distances mean {mean:.1f}, sd {std:.2f}, closest {closest}; "
          "expected false pairs per million images: "
          + ", ".join(f"r={r}: {expected[r]:.3g}" for r in range(low, high + 1, 2)))
    print(f"chosen radius {chosen}")
    summary = report(positives, negatives, range(low, high + 1), chosen)
    if args.json:
        Path(args.json).write_text(json.dumps({"chosen": chosen, "summary": summary, "positives": positives,
                                               "negatives": {k: v for k, v in negatives.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
