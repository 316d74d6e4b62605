"""opencv against Pillow where both could do a job: reduced JPEG decode, resize, the pHash input,
the training loader's patch resample.

    nice .venv/bin/python bench/bench_opencv.py [--photos ../shared/photos] [--repeats 5]
        [--samples 4] [--cv-threads 1] [--no-calibration] [--limit N]

One process; opencv is held to `--cv-threads` threads (default 1: Pillow uses one, and the
loader runs one process per core). Every case runs both libraries on the same input, alternating
which goes first, `--repeats` times per item; a case's figure is the median over repeats of the
mean time per item (an image, a sample or a patch), so large and small photos weigh as they do
in a real pass. The ratio is Pillow / opencv: above 1, opencv is faster. "same result?" compares
the two outputs of every item: max and mean absolute difference in 8-bit levels over all
pixels (and how many items are identical), or for pHashes the Hamming distance between the two
64-bit hashes. "rule" applies the adoption rule: ratio >= 1.3 and the same result (identical;
for a resampling, mean < 0.5 and max <= 2 levels; a hash must be bit-identical).

  a. decode: Pillow `draft` + `load` against `cv2.imdecode(..., IMREAD_REDUCED_COLOR_s)`
     (asked for RGB, which libjpeg-turbo writes directly), full size and 1/2, 1/4, 1/8.
  b. pHash as curation computes it (shards/intake/probe.py: draft so the short side stays >= 256, EXIF
     orientation, imagehash.phash = Pillow L + Lanczos 32x32 + DCT) against opencv (the same
     reduced decode, cv2 grey, INTER_AREA to 32x32, the same DCT); and from a reduced grey
     decode. Over the photos, and over the calibration copies of bench/calibrate_dedup.py.
  c. resize of decoded photos: Lanczos (Pillow LANCZOS, cv2 INTER_LANCZOS4) and box (Pillow
     BOX / reduce, cv2 INTER_AREA) to 256x256 from the centre square, to 1/3 and 1/4 of the
     photo, and a grey 128x128 -> 32x32 chain.
  d. training/loader/decode.py: `decode` at the reduction the draws need and `render_patch`
     (crop, box reduce, Lanczos over the exact subpixel window) against an opencv port (the
     same decode bounds, imdecode reduced, INTER_AREA, warpAffine INTER_LANCZOS4 over the same
     subpixel window), and two cheaper opencv variants that resize the crop rounded to whole
     pixels; then one whole sample (a decode and its 4 patches), p = 256, S uniform.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import sys
import time
from collections import defaultdict
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import imagehash  # noqa: E402
import PIL  # noqa: E402
import scipy.fftpack  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

import training.loader.decode as loader_decode  # noqa: E402
from shards.intake.probe import (  # noqa: E402
    HASH_DECODE_SIDE,
    check_decode_cost,
    perceptual_hash,
    probe_image,
    read_orientation,
)
from training.loader.decode import (  # noqa: E402
    JPEG_REDUCTIONS,
    LANCZOS_SUPPORT,
    _map_rect,
    decode,
    decode_reduction,
    display_to_stored,
    max_reduction,
    mirrored,
    render_patch,
    stored_to_display,
)
from training.loader.sampler import StreamConfig, draw_patches  # noqa: E402

LANCZOS = Image.Resampling.LANCZOS
BOX = Image.Resampling.BOX
REDUCED_COLOR = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}
REDUCED_GREY = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
                8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def cv_flag(s: int, grey: bool = False) -> int:
    """imdecode flags for a 1/s DCT-reduced decode, in RGB order (or grey)."""
    return REDUCED_GREY[s] if grey else (REDUCED_COLOR[s] & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB


def draft_scale(size: tuple[int, int], requested: tuple[int, int]) -> int:
    """The DCT reduction Pillow's JPEG `draft` picks for a requested size (JpegImagePlugin.draft)."""
    scale = min(size[0] // requested[0], size[1] // requested[1])
    return next(s for s in (8, 4, 2, 1) if scale >= s)


def as_array(x) -> np.ndarray:
    return np.asarray(x) if isinstance(x, Image.Image) else x


# --- comparisons --------------------------------------------------------------------------

def pixel_diff(a, b) -> tuple:
    a, b = as_array(a), as_array(b)
    if a.shape != b.shape:
        return ("shape", a.shape, b.shape)
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return ("pixels", int(d.max()), float(d.mean()), d.size)


def hash_diff(a: int, b: int) -> tuple:
    return ("hash", (a ^ b).bit_count())


def summarize(diffs: list[tuple]) -> tuple[str, bool, bool]:
    """(text, identical everywhere, within the resampling tolerance)."""
    if any(d[0] == "shape" for d in diffs):
        bad = next(d for d in diffs if d[0] == "shape")
        return f"shapes differ ({bad[1]} vs {bad[2]})", False, False
    if diffs[0][0] == "hash":
        h = np.array([d[1] for d in diffs])
        same = int(np.sum(h == 0))
        return (f"Hamming: 0 on {same}/{h.size}, mean {h.mean():.2f}, max {h.max()}", same == h.size, same == h.size)
    mx = max(d[1] for d in diffs)
    mean = sum(d[2] * d[3] for d in diffs) / sum(d[3] for d in diffs)
    same = sum(d[1] == 0 for d in diffs)
    return (f"max {mx}, mean {mean:.3f}; identical {same}/{len(diffs)}", same == len(diffs), mean < 0.5 and mx <= 2)


class Case:
    """One job done both ways: times per repeat per item, and the difference per item."""

    def __init__(self, name: str, unit: str = "image", resampling: bool = False):
        self.name, self.unit, self.resampling = name, unit, resampling
        self.times: dict[str, dict[int, list[float]]] = {"pil": defaultdict(list), "cv": defaultdict(list)}
        self.diffs: list[tuple] = []

    def run(self, repeats: int, pil_fn, cv_fn, compare=pixel_diff) -> None:
        out = {}
        for r in range(repeats):
            order = [("pil", pil_fn), ("cv", cv_fn)]
            for lib, fn in order if r % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                out[lib] = fn()
                self.times[lib][r].append((time.perf_counter() - start) * 1e3)
        self.diffs.append(compare(out["pil"], out["cv"]))

    def ms(self, lib: str) -> float:
        return statistics.median(statistics.mean(v) for v in self.times[lib].values())

    def row(self) -> str:
        pil, cv = self.ms("pil"), self.ms("cv")
        ratio = pil / cv
        text, identical, close = summarize(self.diffs)
        same = identical or (self.resampling and close)
        rule = "adopt" if ratio >= 1.3 and same else ("no: differs" if not same else "no: not 1.3x faster")
        if not same and ratio < 1.3:
            rule = "no: differs, not 1.3x faster"
        return f"| {self.name} | {pil:.2f} | {cv:.2f} | {ratio:.2f}x | {text} | {rule} |"


# --- b. pHash ------------------------------------------------------------------------------

def dct_hash(pixels: np.ndarray) -> int:
    """imagehash.phash from its 32x32 grey input: DCT, 8x8 low band, > median, bits row-major."""
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    low = dct[:8, :8]
    bits = (low > np.median(low)).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def phash_pillow(data: bytes) -> int:
    """The hash part of shards.intake.probe._inspect, as it is (draft, load, orientation, phash)."""
    image = Image.open(io.BytesIO(data))
    w, h = image.size
    scale = max(1, min(w, h) // HASH_DECODE_SIDE)
    if image.format == "JPEG":
        image.draft("RGB" if image.mode == "RGB" else image.mode, (w // scale, h // scale))
    image.load()
    orientation = read_orientation(image)
    image = ImageOps.exif_transpose(image) if orientation != 1 else image
    return int(perceptual_hash(image), 16)


def phash_cv(data: bytes, grey_decode: bool = False) -> int:
    """The same from opencv: the header through Pillow (probe opens it anyway), the same DCT
    reduction, imdecode (which applies the EXIF orientation itself), grey, INTER_AREA to 32x32."""
    with Image.open(io.BytesIO(data)) as image:
        w, h = image.size
    scale = max(1, min(w, h) // HASH_DECODE_SIDE)
    s = draft_scale((w, h), (w // scale, h // scale))
    buf = np.frombuffer(data, np.uint8)
    if grey_decode:
        grey = cv2.imdecode(buf, cv_flag(s, grey=True))
    else:
        grey = cv2.cvtColor(cv2.imdecode(buf, cv_flag(s)), cv2.COLOR_RGB2GRAY)
    return dct_hash(cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA))


# --- d. the loader's path in opencv --------------------------------------------------------

def orient_np(a: np.ndarray, o: int) -> np.ndarray:
    """decode.ORIENT_OPS on an array (Pillow's ROTATE_90 turns counter-clockwise, as np.rot90)."""
    return {2: lambda: a[:, ::-1], 3: lambda: a[::-1, ::-1], 4: lambda: a[::-1],
            5: lambda: a.swapaxes(0, 1), 6: lambda: np.rot90(a, -1), 7: lambda: a[::-1, ::-1].swapaxes(0, 1),
            8: lambda: np.rot90(a, 1)}[o]()


def cv_decode(data: bytes, reduction: int) -> tuple[np.ndarray, int, tuple[int, int]]:
    """decode.decode with imdecode: the same header checks and decode bounds, the same reduction."""
    image = Image.open(io.BytesIO(data))
    check_decode_cost(image, data, loader_decode._LIMITS.max_pixels, loader_decode._LIMITS.max_jpeg_scans)
    stored, actual = image.size, 1
    if reduction > 1 and image.format in ("JPEG", "MPO"):
        r = next(r for r in JPEG_REDUCTIONS if r <= reduction)
        actual = draft_scale(stored, (stored[0] // r, stored[1] // r))
    flags = cv_flag(actual) | cv2.IMREAD_IGNORE_ORIENTATION  # the loader orients the crop itself
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags), actual, stored


def cv_render_patch(arr: np.ndarray, r: int, o: int, stored: tuple[int, int], draw, oversample: float = 1.0,
                    mode: str = "warp") -> np.ndarray:
    """decode.render_patch on an array. mode "warp": warpAffine INTER_LANCZOS4 over the exact
    subpixel window; "resize-lanczos" / "resize-area": cv2.resize of the window rounded to whole
    (reduced) pixels."""
    sw, sh = stored
    x0, y0, w = draw.window()
    c = draw.canvas
    win = [v / r for v in _map_rect((x0, y0, x0 + w, y0 + w), lambda x, y: display_to_stored(x, y, o, sw, sh))]
    can = [v / r for v in _map_rect((c.ox, c.oy, c.ox + c.n, c.oy + c.n),
                                    lambda x, y: display_to_stored(x, y, o, sw, sh))]
    step = w / r / draw.size
    margin = math.ceil(LANCZOS_SUPPORT * max(step, 1.0)) + 1
    ih, iw = arr.shape[:2]
    box = (max(math.floor(win[0]) - margin, math.floor(can[0]), 0), max(math.floor(win[1]) - margin, math.floor(can[1]), 0),
           min(math.ceil(win[2]) + margin, math.ceil(can[2]), iw), min(math.ceil(win[3]) + margin, math.ceil(can[3]), ih))
    crop = arr[box[1]:box[3], box[0]:box[2]]
    ch, cw = crop.shape[:2]
    local = (win[0] - box[0], win[1] - box[1], win[2] - box[0], win[3] - box[1])
    if o != 1:
        crop = np.ascontiguousarray(orient_np(crop, o))
        local = _map_rect(local, lambda x, y: stored_to_display(x, y, o, cw, ch))
    extra = max(1, max_reduction(draw.density(), oversample) // r)
    if extra > 1:
        # Whole blocks only (Pillow's reduce also averages a partial last block).
        bh, bw = crop.shape[0] // extra, crop.shape[1] // extra
        crop = cv2.resize(crop[:bh * extra, :bw * extra], (bw, bh), interpolation=cv2.INTER_AREA)
        local = tuple(v / extra for v in local)
    lh, lw = crop.shape[:2]
    local = (max(local[0], 0.0), max(local[1], 0.0), min(local[2], lw), min(local[3], lh))
    p = draw.size
    if mode == "warp":
        sx, sy = (local[2] - local[0]) / p, (local[3] - local[1]) / p
        # Output pixel i has its centre at local[0] + (i + 0.5) sx in Pillow's continuous
        # coordinates, which is index local[0] + (i + 0.5) sx - 0.5 in opencv's.
        m = np.array([[sx, 0.0, local[0] + 0.5 * sx - 0.5], [0.0, sy, local[1] + 0.5 * sy - 0.5]])
        patch = cv2.warpAffine(crop, m, (p, p), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
    else:
        xa, ya, xb, yb = (round(v) for v in local)
        patch = cv2.resize(crop[ya:yb, xa:xb], (p, p),
                           interpolation=cv2.INTER_LANCZOS4 if mode == "resize-lanczos" else cv2.INTER_AREA)
    return mirrored(patch, draw)


def patches_diff(a: list, b: list) -> tuple:
    return pixel_diff(np.stack(a), np.stack(b))


# --- the cases, per photo ---------------------------------------------------------------------

def pil_decode(data: bytes, size: tuple[int, int], s: int) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    if s > 1:
        im.draft("RGB", (size[0] // s, size[1] // s))
    im.load()
    return im


def grey_chain_pil(image: Image.Image) -> Image.Image:
    return image.convert("L").resize((128, 128), BOX).resize((32, 32), BOX)


def grey_chain_cv(arr: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    return cv2.resize(cv2.resize(grey, (128, 128), interpolation=cv2.INTER_AREA), (32, 32), interpolation=cv2.INTER_AREA)


def resize_cases(case, repeats: int, data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        image = im.convert("RGB")
    arr = np.array(image)
    w, h = image.size
    n = min(w, h)
    ox, oy = (w - n) // 2, (h - n) // 2
    square = arr[oy:oy + n, ox:ox + n]
    third = (w // 3, h // 3)
    w4, h4 = w // 4, h // 4
    canvas = (ox, oy, ox + n, oy + n)
    case("c1", "c. centre square to 256x256: LANCZOS vs INTER_LANCZOS4", resampling=True).run(
        repeats, partial(image.resize, (256, 256), LANCZOS, box=canvas),
        partial(cv2.resize, square, (256, 256), interpolation=cv2.INTER_LANCZOS4))
    case("c2", "c. centre square to 256x256: BOX vs INTER_AREA", resampling=True).run(
        repeats, partial(image.resize, (256, 256), BOX, box=canvas),
        partial(cv2.resize, square, (256, 256), interpolation=cv2.INTER_AREA))
    case("c3", "c. to 1/3 size: LANCZOS vs INTER_LANCZOS4", resampling=True).run(
        repeats, partial(image.resize, third, LANCZOS), partial(cv2.resize, arr, third, interpolation=cv2.INTER_LANCZOS4))
    case("c4", "c. to 1/3 size: BOX vs INTER_AREA", resampling=True).run(
        repeats, partial(image.resize, third, BOX), partial(cv2.resize, arr, third, interpolation=cv2.INTER_AREA))
    case("c5", "c. to 1/4 size: reduce(4) vs INTER_AREA", resampling=True).run(
        repeats, partial(image.reduce, 4, box=(0, 0, w4 * 4, h4 * 4)),
        partial(cv2.resize, arr[:h4 * 4, :w4 * 4], (w4, h4), interpolation=cv2.INTER_AREA))
    case("c6", "c. grey, 128x128, 32x32: convert L + BOX x2 vs cvtColor + INTER_AREA x2", resampling=True).run(
        repeats, partial(grey_chain_pil, image), partial(grey_chain_cv, arr))


CV_MODES = (("warp", "warpAffine INTER_LANCZOS4 (same subpixel window)"),
            ("resize-lanczos", "cv2.resize INTER_LANCZOS4 of the window to whole pixels"),
            ("resize-area", "cv2.resize INTER_AREA of the window to whole pixels"))


def pil_sample(data: bytes, orientation: int, reduction: int, draws, oversample: float) -> list[np.ndarray]:
    # The loader's own path: since 2026-12-07 Lanczos (reducing gap 3) with no box step before
    # it, so the OpenCV modes below, which keep that box step, are compared with a finer filter.
    decoded = decode(data, orientation, reduction)
    return [render_patch(decoded, d) for d in draws]


def cv_sample(data: bytes, orientation: int, reduction: int, draws, oversample: float) -> list[np.ndarray]:
    arr, r, stored = cv_decode(data, reduction)
    return [cv_render_patch(arr, r, orientation, stored, d, oversample) for d in draws]


def loader_cases(case, repeats: int, samples: int, data: bytes, size: tuple[int, int], rng) -> None:
    stream = StreamConfig()  # p = 256, S uniform in [256, native side], 4 patches per decode
    orientation = read_orientation(Image.open(io.BytesIO(data)))
    for _ in range(samples):
        draws = draw_patches(*size, stream, rng)
        reduction = decode_reduction(draws, stream.oversample)
        case("d1", "d. loader decode at the draws' reduction", "sample").run(
            repeats, partial(pil_decode_image, data, orientation, reduction), partial(cv_decode_array, data, reduction))
        decoded = decode(data, orientation, reduction)
        arr, r, stored = cv_decode(data, reduction)
        assert r == decoded.reduction and stored == decoded.stored_size
        for draw in draws:
            for mode, label in CV_MODES:
                case(f"d2{mode}", f"d. render_patch: Pillow LANCZOS box vs {label}", "patch", True).run(
                    repeats, partial(render_patch, decoded, draw, stream.oversample),
                    partial(cv_render_patch, arr, r, orientation, stored, draw, stream.oversample, mode))
        args = (data, orientation, reduction, draws, stream.oversample)
        case("d3", "d. one loader sample: decode + 4 patches (opencv: imdecode + warpAffine)", "sample", True).run(
            repeats, partial(pil_sample, *args), partial(cv_sample, *args), patches_diff)


def pil_decode_image(data: bytes, orientation: int, reduction: int) -> Image.Image:
    return decode(data, orientation, reduction).image


def cv_decode_array(data: bytes, reduction: int) -> np.ndarray:
    return cv_decode(data, reduction)[0]


# --- the run ---------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", default=str(ROOT.parent / "shared" / "photos"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=4, help="loader samples (a decode and its patches) per photo")
    parser.add_argument("--cv-threads", type=int, default=1)
    parser.add_argument("--no-calibration", action="store_true", help="skip the pHash check on calibration copies")
    parser.add_argument("--limit", type=int, help="only the first N photos (a quick try)")
    args = parser.parse_args()
    cv2.setNumThreads(args.cv_threads)
    paths = sorted(Path(args.photos).glob("*.jpg"))[:args.limit]
    photos = [p.read_bytes() for p in paths]
    sizes = [Image.open(io.BytesIO(d)).size for d in photos]
    print(f"{len(photos)} photos ({min(w * h for w, h in sizes) / 1e6:.1f} to {max(w * h for w, h in sizes) / 1e6:.1f} MP)"
          f" from {args.photos}; {args.repeats} repeats; Pillow {PIL.__version__}, opencv {cv2.__version__} "
          f"({cv2.getNumThreads()} thread{'s' if cv2.getNumThreads() != 1 else ''}), imagehash {imagehash.__version__}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start")

    cases: dict[str, Case] = {}

    def case(key: str, name: str, unit: str = "image", resampling: bool = False) -> Case:
        if key not in cases:
            cases[key] = Case(name, unit, resampling)
        return cases[key]

    # a. decode, full size and DCT-reduced
    for data, size in zip(photos, sizes):
        buf = np.frombuffer(data, np.uint8)
        for s in (1, 2, 4, 8):
            name = "a. decode, full size" if s == 1 else f"a. decode at 1/{s} (draft vs IMREAD_REDUCED_COLOR_{s})"
            case(f"a{s}", name).run(args.repeats, partial(pil_decode, data, size, s), partial(cv2.imdecode, buf, cv_flag(s)))

    # b. pHash
    probe_agrees = 0
    for data in photos:
        probe_agrees += phash_pillow(data) == int(probe_image(data).phash, 16)
        case("b", "b. pHash: probe path (draft, L, Lanczos 32) vs reduced decode, cv2 grey, INTER_AREA 32").run(
            args.repeats, partial(phash_pillow, data), partial(phash_cv, data), hash_diff)
        case("bg", "b. pHash: probe path vs reduced grey decode (IMREAD_REDUCED_GRAYSCALE), INTER_AREA 32").run(
            args.repeats, partial(phash_pillow, data), partial(phash_cv, data, grey_decode=True), hash_diff)
    with Image.open(io.BytesIO(photos[0])) as im:
        im.draft("RGB", (im.width // 8, im.height // 8))
        small = im.convert("L").resize((32, 32), LANCZOS)
        assert dct_hash(np.asarray(small)) == int(str(imagehash.phash(im)), 16), "dct_hash is not imagehash's"
    calibration = []
    if not args.no_calibration:
        try:
            sys.path.insert(0, str(ROOT / "bench"))
            from calibrate_dedup import copies
        except Exception as exc:  # the calibration script is not this bench's to keep working
            print(f"calibration copies skipped: {type(exc).__name__}: {exc}")
        else:
            for data in photos:
                with Image.open(io.BytesIO(data)) as im:
                    image = im.convert("RGB")
                for copy in copies(image).values():
                    a = phash_pillow(copy)
                    calibration.append((hash_diff(a, phash_cv(copy)), hash_diff(a, phash_cv(copy, True))))

    # c. resize, on the decoded photos (Pillow image and the same pixels as an array)
    for data in photos:
        resize_cases(case, args.repeats, data)

    # d. the loader: decode at the draws' reduction, render_patch, one whole sample
    for i, (data, size) in enumerate(zip(photos, sizes)):
        loader_cases(case, args.repeats, args.samples, data, size, np.random.default_rng(i))

    print("\n| case | Pillow ms | opencv ms | Pillow/opencv | same result? | rule |")
    print("| --- | --- | --- | --- | --- | --- |")
    for c in cases.values():
        print(c.row().replace(" | ", f" (per {c.unit}) | ", 1) if c.unit != "image" else c.row())
    print(f"\npHash path of this bench equals shards.intake.probe.probe_image on {probe_agrees}/{len(photos)} photos.")
    if calibration:
        for k, label in ((0, "reduced decode + cv2 grey"), (1, "reduced grey decode")):
            text, _, _ = summarize([c[k] for c in calibration])
            print(f"pHash on {len(calibration)} calibration copies (bench/calibrate_dedup.py), Pillow vs opencv, "
                  f"{label}: {text}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
