"""Calibrate near-duplicate detection: pHash distances and the crop stage's decisions on true
copies against distinct images.

    .venv/bin/python bench/calibrate_dedup.py [--photos ../shared/photos [MORE ...]] [--radius 0..16]
        [--align-radius 6] [--threshold 0.85] [--phash-radius R] [--json calibration.json]

From every real photo it makes the copies a scrape meets: downscales to 1/2, 1/4 and 1/8, JPEG
re-encodes at quality 60 to 95, mild brightness and contrast changes; border crops of 2 to 10% on
all sides and on two sides (left + top, right + bottom), a 5% crop downscaled and re-encoded;
and overlays (a semi-opaque box with text) of three sizes at three opacities in the lower right
corner, and one size in two other corners. Each (original, copy) pair is a positive. Negatives:
every pair of images made from two different photos (originals and copies alike), and distinct
crops of one photo, the hardest case: the 3x3 tiles, crops overlapping by half, and a burst (the
same scene with the frame moved by a fifth). Hashes and signatures are the project's own
(`shards.intake.probe`, `curation.dedup.image_signature`), from the encoded bytes exactly as curation makes them.

Prints, per transformation, the recall of `--dedup pixels` (pHash within the radius) and of
`--dedup crops` (that, or a window-hash candidate accepted by the alignment check, as the crop
stage decides it), and the false pairs per negative kind for both. The pHash radius is chosen as
before: the largest radius without a false positive at scale (the distinct-photo distances are
fitted with a normal distribution, and the radius is the largest whose fitted tail predicts at
most `--max-false` falsely merged pairs among a million images), then the smallest radius finding
the same copies. The alignment threshold's margin is shown by forcing the check on every
negative pair of originals and crops of one photo, whether the hashes proposed it or not.
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
from curation.dedup.alignment import DEFAULT_THRESHOLD, QUADRANT_FLOOR, align  # noqa: E402
from curation.dedup.crops import DEFAULT_ALIGN_RADIUS, SAME_FRAME, Signed, candidates, verify, window_box  # noqa: E402
from curation.dedup.image_signature import INSETS, THUMB_SIDE, signature  # noqa: E402
from shards.intake.probe import decode_image  # noqa: E402

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


def watermark(image: Image.Image, width: float = 0.25, height: float = 0.06, opacity: float = 0.55,
              corner: str = "lower right", text: str = "(c) example.com") -> Image.Image:
    """A semi-opaque white box with text, `width` x `height` of the image, 3% in from a corner."""
    out = image.convert("RGBA")
    w, h = out.size
    bw, bh = int(w * width), int(h * height)
    x0 = int(w * 0.97) - bw if "right" in corner else int(w * 0.03)
    y0 = int(h * 0.97) - bh if "lower" in corner else int(h * 0.03)
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.rectangle((x0, y0, x0 + bw, y0 + bh), fill=(255, 255, 255, int(255 * opacity)))
    draw.text((x0 + 8, y0 + 4), text, fill=(0, 0, 0, 220), font_size=max(10, bh // 2))
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
    for factor in (0.85, 1.15):
        out[f"brightness x{factor}"] = jpeg(ImageEnhance.Brightness(half).enhance(factor))
        out[f"contrast x{factor}"] = jpeg(ImageEnhance.Contrast(half).enhance(factor))
    for f in (0.02, 0.035, 0.05, 0.075, 0.10):
        out[f"crop {f:.1%} all sides"] = jpeg(border_crop(half, f))
        out[f"crop {f:.1%} left + top"] = jpeg(border_crop(half, f, "lt"))
        out[f"crop {f:.1%} right + bottom"] = jpeg(border_crop(half, f, "rb"))
    out["crop 5% + 1/4 + q70"] = jpeg(border_crop(image, 0.05).resize((w // 4, h // 4)), 70)
    out["1/4 + q70 + crop 2%"] = jpeg(border_crop(image.resize((w // 4, h // 4)), 0.02), 70)
    for size in ((0.15, 0.05), (0.25, 0.06), (0.40, 0.10)):
        for opacity in (0.3, 0.55, 0.85):
            out[f"overlay {size[0]:.0%} x {size[1]:.0%} at {opacity:.0%}"] = jpeg(watermark(half, *size, opacity))
    for corner in ("upper left", "lower left"):
        out[f"overlay 25% x 6% at 55%, {corner}"] = jpeg(watermark(half, corner=corner))
    return out


def crops(image: Image.Image) -> dict[str, list[tuple[bytes, bytes]]]:
    """Pairs of distinct crops of one photo, by kind: its 3x3 tiles, crops half overlapping,
    and a burst (the same scene, the frame moved by a fifth of its width, height or both)."""
    w, h = image.size
    tiles = [jpeg(image.crop((i * w // 3, j * h // 3, (i + 1) * w // 3, (j + 1) * h // 3)).resize((w // 6, h // 6)))
             for j in range(3) for i in range(3)]
    halves, bursts = [], []
    for fx, fy in ((0.25, 0.0), (0.0, 0.25), (0.25, 0.25)):
        a = image.crop((0, 0, w // 2, h // 2))
        b = image.crop((int(w * fx), int(h * fy), int(w * fx) + w // 2, int(h * fy) + h // 2))
        halves.append((jpeg(a.resize((w // 4, h // 4))), jpeg(b.resize((w // 4, h // 4)))))
    for fx, fy in ((0.2, 0.0), (0.0, 0.2), (0.2, 0.2)):
        size = (int(w * 0.8), int(h * 0.8))
        a = image.crop((0, 0, *size))
        b = image.crop((int(w * fx), int(h * fy), int(w * fx) + size[0], int(h * fy) + size[1]))
        bursts.append((jpeg(a.resize((size[0] // 2, size[1] // 2))), jpeg(b.resize((size[0] // 2, size[1] // 2)))))
    return {"distinct tiles of one photo": list(itertools.combinations(tiles, 2)),
            "crops of one photo, half overlapping": halves,
            "a burst: the frame moved by a fifth": bursts}


def look(data: bytes) -> dict:
    """What curation stores of an image: pHash, signature, size."""
    decoded = decode_image(data)
    sig = signature(decoded.image, decoded.quantization)
    return {"phash": int(decoded.info.phash, 16), "windows": sig.windows, "thumb": sig.thumb,
            "size": (decoded.info.width, decoded.info.height)}


def measure(path: str) -> dict:
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        image = im.convert("RGB")
    return {"photo": Path(path).name, "original": look(data),
            "copies": {name: look(b) for name, b in copies(image).items()},
            "pairs": {kind: [(look(a), look(b)) for a, b in pairs] for kind, pairs in crops(image).items()}}


def distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def images_and_pairs(results: list[dict]):
    """Every image once, the positive and negative pairs as indexes into that list, and each
    photo's original's index."""
    images: list[dict] = []
    positives: dict[str, list[tuple[int, int]]] = {}
    negatives: dict[str, list[tuple[int, int]]] = {"distinct photos": []}
    families = []
    for r in results:
        first = len(images)
        images += [r["original"], *r["copies"].values()]
        families.append(range(first, len(images)))
        for k, name in enumerate(r["copies"], start=1):
            positives.setdefault(name, []).append((first, first + k))
        for kind, pairs in r["pairs"].items():
            for a, b in pairs:
                images += [a, b]
                negatives.setdefault(kind, []).append((len(images) - 2, len(images) - 1))
    for fa, fb in itertools.combinations(families, 2):
        negatives["distinct photos"] += [(a, b) for a in fa for b in fb]
    return images, positives, negatives, [family[0] for family in families]


def signed(images: list[dict]) -> Signed:
    return Signed(np.arange(len(images)),
                  np.stack([np.frombuffer(im["windows"], "<u8") for im in images]).astype(np.uint64),
                  np.stack([np.frombuffer(im["thumb"], np.uint8).reshape(THUMB_SIDE, THUMB_SIDE) for im in images]),
                  np.array([im["size"] for im in images], np.int64))


def accepted_pairs(everything: Signed, radius: int, threshold: float) -> set[tuple[int, int]]:
    """The pairs the crop stage accepts, proposed by the window hashes as in a run."""
    return {(c.a, c.b) for c in candidates(everything.hashes, radius) if verify(c, everything, everything, threshold)}


def forced_score(everything: Signed, a: int, b: int) -> float:
    """The best alignment score of either image inside the other, from every hypothesis the
    stage could make (the whole frame, and each inset window), proposed or not, among the
    alignments that pass the check's other two tests (the inner frame inside, three quadrants
    agreeing); -1 where none does."""
    best = -1.0
    for inner, outer in ((a, b), (b, a)):
        (wi, hi), (wo, ho) = everything.sizes[inner], everything.sizes[outer]
        for box in (SAME_FRAME, *(window_box(w) for w in INSETS)):
            found = align(everything.thumbs[outer], everything.thumbs[inner], box, (hi / ho) / (wi / wo))
            if found.box.inside() and found.quadrants >= QUADRANT_FLOOR:
                best = max(best, found.score)
    return best


def goal_names(names) -> list[str]:
    """The transformations the goal speaks of: crops up to 5% per side, and the overlays."""
    return [n for n in names if n.startswith("overlay") or (n.startswith("crop") and
            any(f"crop {f}" in n for f in ("2.0%", "3.5%", "5.0%", "5%")))]


def report(images, positives, negatives, radii, chosen: int, accepted: dict[float, set], threshold: float) -> dict:
    def found_pixels(pair, r):
        return distance(images[pair[0]]["phash"], images[pair[1]]["phash"]) <= r

    def found_crops(pair, t=threshold):
        return found_pixels(pair, chosen) or (min(pair), max(pair)) in accepted[t]

    print(f"\nrecall of true copies: pHash within each radius (--dedup pixels), and --dedup crops "
          f"(pHash within {chosen}, or accepted by the crop stage at threshold {threshold})")
    print("| transformation | n | median pHash distance | " + " | ".join(f"r={r}" for r in radii)
          + f" | **pixels, r={chosen}** | **crops** |")
    print("| --- " * (len(radii) + 5) + "|")
    summary = {"recall": {}, "false_pairs": {}}
    for name, pairs in positives.items():
        d = np.array([distance(images[a]["phash"], images[b]["phash"]) for a, b in pairs])
        crops_recall = float(np.mean([found_crops(p) for p in pairs]))
        summary["recall"][name] = {"pixels": float(np.mean(d <= chosen)), "crops": crops_recall}
        print(f"| {name} | {d.size} | {np.median(d):.0f} | " + " | ".join(f"{np.mean(d <= r):.2f}" for r in radii)
              + f" | **{np.mean(d <= chosen):.2f}** | **{crops_recall:.2f}** |")
    print("\nfalse pairs among distinct images (count of pairs merged); closest = smallest pHash distance")
    print(f"| negative pairs | n | closest | pixels, r={chosen} | crops |\n| --- | --- | --- | --- | --- |")
    for kind, pairs in negatives.items():
        d = [distance(images[a]["phash"], images[b]["phash"]) for a, b in pairs]
        fp_pixels = sum(x <= chosen for x in d)
        fp_crops = sum(found_crops(p) for p in pairs)
        summary["false_pairs"][kind] = {"pixels": int(fp_pixels), "crops": int(fp_crops), "n": len(pairs)}
        print(f"| {kind} | {len(pairs):,} | {min(d)} | {fp_pixels} | {fp_crops} |")
    goal = goal_names(positives)
    print("\nthe crop stage's threshold: recall over the goal's copies (crops up to 5% per side, overlays) "
          "and false pairs over every negative")
    print("| threshold | recall, goal copies | recall, all copies | false pairs |\n| --- | --- | --- | --- |")
    summary["thresholds"] = {}
    every_negative = [p for pairs in negatives.values() for p in pairs]
    for t in sorted(accepted):
        rg = float(np.mean([found_crops(p, t) for n in goal for p in positives[n]]))
        ra = float(np.mean([found_crops(p, t) for pairs in positives.values() for p in pairs]))
        fp = int(sum(found_crops(p, t) for p in every_negative))
        summary["thresholds"][t] = {"recall_goal": rg, "recall_all": ra, "false_pairs": fp}
        mark = " (default)" if t == threshold else ""
        print(f"| {t}{mark} | {rg:.3f} | {ra:.3f} | {fp} |")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", nargs="+", default=[str(ROOT.parent / "shared" / "photos")],
                        help="folders (their *.jpg) and image files, e.g. scikit-image's data photos")
    parser.add_argument("--radius", default="0..16", help="pHash radii to report, LOW..HIGH")
    parser.add_argument("--max-false", type=float, default=1000,
                        help="false pairs allowed per million images, by the fitted tail (default 1000)")
    parser.add_argument("--align-radius", type=int, default=DEFAULT_ALIGN_RADIUS,
                        help=f"window-hash radius of the crop stage (default {DEFAULT_ALIGN_RADIUS})")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"the crop stage's alignment threshold (default {DEFAULT_THRESHOLD})")
    parser.add_argument("--phash-radius", type=int,
                        help="score the modes at this pHash radius instead of the one the rule chooses")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    paths = [str(q) for p in map(Path, args.photos) for q in (sorted(p.glob("*.jpg")) if p.is_dir() else [p])]
    if len(paths) < 2:
        parser.error(f"need at least two photos in {' '.join(args.photos)}")
    low, high = (int(x) for x in args.radius.split(".."))
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(measure, paths))
    images, positives, negatives, originals = images_and_pairs(results)
    phash_negative = {k: [distance(images[a]["phash"], images[b]["phash"]) for a, b in v] for k, v in negatives.items()}
    closest = min(min(d) for d in phash_negative.values())
    distinct = np.array(phash_negative["distinct photos"], dtype=float)
    mean, std = distinct.mean(), distinct.std()
    pairs = 1e6 * (1e6 - 1) / 2
    # A few thousand distinct pairs say nothing about a tail of 5e11: the fit does.
    expected = {r: pairs * 0.5 * math.erfc((mean - (r + 0.5)) / (std * math.sqrt(2))) for r in range(65)}
    chosen = max((r for r in range(closest) if expected[r] <= args.max_false), default=0)
    # pHash distances come out even (half the bits are set): a radius that finds no more copies
    # than a smaller one buys only false pairs and search time
    found = np.array([distance(images[a]["phash"], images[b]["phash"]) for v in positives.values() for a, b in v])
    chosen = min(r for r in range(chosen + 1) if np.sum(found <= r) == np.sum(found <= chosen))
    print(f"{len(paths)} photos, {len(images)} images; distinct-photo pHash distances mean {mean:.1f}, sd {std:.2f}, "
          f"closest {closest}; expected false pairs per million images: "
          + ", ".join(f"r={r}: {expected[r]:.3g}" for r in range(low, high + 1, 2)))
    print(f"chosen pHash radius {chosen}" + (f"; scored at {args.phash_radius}, as asked"
                                             if args.phash_radius is not None else ""))
    if args.phash_radius is not None:
        chosen = args.phash_radius
    everything = signed(images)
    thresholds = sorted({0.8, 0.85, 0.9, 0.95, args.threshold})
    accepted = {t: accepted_pairs(everything, args.align_radius, t) for t in thresholds}
    summary = report(images, positives, negatives, range(low, high + 1), chosen, accepted, args.threshold)
    # the threshold's margin: the check forced on the hard negatives and on distinct originals
    forced = {kind: [forced_score(everything, a, b) for a, b in pairs] for kind, pairs in negatives.items()
              if kind != "distinct photos"}
    forced["distinct photos (originals)"] = [forced_score(everything, a, b)
                                             for a, b in itertools.combinations(originals, 2)]
    true_scores = [forced_score(everything, a, b) for n in goal_names(positives) for a, b in positives[n]]
    print("\nthe alignment check forced on every pair (proposed by the hashes or not): the best score "
          "among alignments with the inner frame inside and three quadrants agreeing (-1: none)")
    print(f"| pairs | n | highest | 99th percentile | accepted at {args.threshold} |\n| --- | --- | --- | --- | --- |")
    for kind, scores in forced.items():
        print(f"| {kind} | {len(scores)} | {max(scores):.3f} | {np.percentile(scores, 99):.3f} | "
              f"{sum(x >= args.threshold for x in scores)} |")
    print(f"| true copies (the goal's) | {len(true_scores)} | lowest {min(true_scores):.3f} | "
          f"1st percentile {np.percentile(true_scores, 1):.3f} | {sum(x >= args.threshold for x in true_scores)} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"phash_radius": chosen, "summary": summary,
                                               "forced": {k: max(v) for k, v in forced.items()},
                                               "true_lowest": min(true_scores)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
