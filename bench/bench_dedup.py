"""Near-duplicate search at scale: anyres's multi-index search against brute force and imagededup.

    .venv/bin/python bench/bench_dedup.py [--n 1000000] [--radius 6] [--planted 50000] [--hot 0]
        [--brute 20000] [--imagededup /tmp/idd/bin/python --imagededup-n 20000] [--workers 1 2]
        [--before ceb92ee --repeat 3]

Makes `--n` random 64-bit hashes in which `--planted` pairs are planted at known distances,
0 to radius + 2 in turn (the last two just outside the radius: they must not be reported).
Each search runs in a fresh child process pinned to the first two cores, which reports its
wall time and its peak resident memory during the search (VmHWM after resetting it, minus the
resident memory before: the search's own memory). Recall is over the planted pairs within the
radius; a search must also report exactly the pairs brute force reports, which is checked on
the brute-force subset. Brute force is timed on `--brute` hashes and extrapolated to `--n`
quadratically (said so in the output). `--before REV` also runs the search as it was at commit
REV (its `curation/dedup/hamming.py`, read with `git show`), alternating with today's `--repeat`
times, and checks that both report the same pairs and distances (a digest of the answer). imagededup's `HashEval` (a BK-tree over its hashes, the
`find_duplicates` path of its hashing methods) runs in its own venv, given by `--imagededup`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_hashes(n: int, radius: int, planted: int, seed: int = 0, hot: int = 0):
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    if hot:  # the first `hot` hashes share their upper 42 bits: two of three parts in one bucket
        top = np.uint64(((1 << 42) - 1) << 22)
        h[:hot] = (h[0] & top) | (h[:hot] & ~top)
    a = rng.choice(n, size=2 * planted, replace=False)
    left, right = a[:planted], a[planted:]
    distances = np.arange(planted) % (radius + 3)
    flips = np.zeros(planted, np.uint64)
    for k in range(planted):
        for b in rng.choice(64, distances[k], replace=False):
            flips[k] |= np.uint64(1) << np.uint64(b)
    h[right] = h[left] ^ flips
    return h, left, right, distances


def peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def current_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def before_module(rev: str):
    """curation/dedup/hamming.py as it was at commit `rev`, imported from a temporary file."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:curation/dedup/hamming.py"],
                            capture_output=True, text=True, check=True).stdout
    path = Path(f"/tmp/bench_dedup_hamming_{rev}.py")
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("hamming_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def child(args) -> None:
    """Runs one search; prints one json line."""
    from curation.dedup.hamming import brute_force, within

    if args.impl != "now":
        within = before_module(args.impl).within
    else:
        within(np.arange(100, dtype=np.uint64), args.radius)  # compiled (or loaded from numba's cache)

    h, left, right, distances = make_hashes(args.n, args.radius, args.planted, hot=args.hot)
    if args.kind in ("brute", "subset"):
        h = h[: args.brute]
    base = current_rss_kb()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to now
    started = time.perf_counter()
    if args.kind == "brute":
        i, j, d = brute_force(h, args.radius)
    else:
        i, j, d = within(h, args.radius, workers=args.workers)
    seconds = time.perf_counter() - started
    peak = peak_rss_kb() - base
    digest = hashlib.sha1(b"".join(np.ascontiguousarray(x).tobytes() for x in (i, j, d))).hexdigest()[:16]
    found = set(zip(i.tolist(), j.tolist())) if i.size < 5_000_000 else None
    want = [(min(a, b), max(a, b)) for a, b, d in zip(left.tolist(), right.tolist(), distances.tolist())
            if d <= args.radius and max(a, b) < h.size]
    recall = sum(p in found for p in want) / max(len(want), 1)
    outside = [(min(a, b), max(a, b)) for a, b, d in zip(left.tolist(), right.tolist(), distances.tolist())
               if d > args.radius and max(a, b) < h.size]
    print(json.dumps({"kind": args.kind, "impl": args.impl, "digest": digest, "n": int(h.size), "seconds": seconds, "peak_mb": peak / 1024,
                      "pairs": int(i.size), "planted_within": len(want), "recall": recall,
                      "outside_reported": sum(p in found for p in outside),
                      "pairs_hash": hash(tuple(sorted(found))) if args.kind != "search" else None}))


IMAGEDEDUP = r"""
import importlib.util, json, pathlib, resource, sys, time, types
import numpy as np
# imagededup's package __init__ imports its CNN (torch); the hashing search needs none of it
root = pathlib.Path(importlib.util.find_spec("imagededup").origin).parent
for name, sub in (("imagededup", ""), ("imagededup.utils", "utils"), ("imagededup.methods", "methods")):
    module = types.ModuleType(name)
    module.__path__ = [str(root / sub)]
    sys.modules[name] = module
from imagededup.handlers.search.retrieval import HashEval
from imagededup.methods.hashing import Hashing
n, radius, path, method = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
h = np.load(path)[:n]
encodings = {str(i): format(int(v), "016x") for i, v in enumerate(h)}
started = time.perf_counter()
result = HashEval(encodings, encodings, Hashing.hamming_distance, verbose=False, threshold=radius,
                  search_method=method).retrieve_results(scores=False)
seconds = time.perf_counter() - started
pairs = {(min(int(a), int(b)), max(int(a), int(b))) for a, found in result.items() for b in found if a != b}
print(json.dumps({"kind": "imagededup-" + method, "n": n, "seconds": seconds, "pairs": len(pairs),
                  "peak_mb_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(argv: list[str]) -> dict:
    cmd = ["taskset", "-c", "0,1", sys.executable, __file__, "--child", *argv]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--radius", type=int, default=6, help="default 6, as --dedup-radius")
    parser.add_argument("--planted", type=int, default=50_000)
    parser.add_argument("--brute", type=int, default=20_000, help="hashes for the brute-force reference")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--hot", type=int, default=0,
                        help="this many hashes share 42 bits: a hot bucket in two of the three parts")
    parser.add_argument("--imagededup", help="python of a venv with imagededup installed")
    parser.add_argument("--imagededup-n", type=int, nargs="+", default=[20_000, 50_000],
                        help="sizes for imagededup's default search")
    parser.add_argument("--bktree-n", type=int, nargs="+", default=[2_000, 5_000],
                        help="sizes for imagededup's BK-tree (its Python distance makes it slow)")
    parser.add_argument("--before", default="", help="also run the search as at this commit, alternately")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each search (medians reported)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="now", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="search", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.workers = args.workers[0]
        child(args)
        return 0
    common = ["--n", str(args.n), "--radius", str(args.radius), "--planted", str(args.planted),
              "--brute", str(args.brute), "--hot", str(args.hot)]
    rows = []
    impls = ["now", args.before] if args.before else ["now"]
    for workers in args.workers:
        runs: dict[str, list[dict]] = {impl: [] for impl in impls}
        for _ in range(args.repeat):
            for impl in reversed(impls):  # alternately, the previous search first
                runs[impl].append(run_child([*common, "--workers", str(workers), "--impl", impl]))
        if len({r["digest"] for rs in runs.values() for r in rs}) != 1:
            raise SystemExit("the search before and now report different pairs")
        for rs in runs.values():
            row = {**rs[0], "workers": workers, "seconds": statistics.median(r["seconds"] for r in rs),
                   "peak_mb": statistics.median(r["peak_mb"] for r in rs),
                   "all_seconds": [round(r["seconds"], 2) for r in rs]}
            rows.append(row)
        if args.before:
            print(f"{workers} thread(s): before/now = {rows[-1]['seconds'] / rows[-2]['seconds']:.2f}x "
                  f"(medians of {args.repeat})", flush=True)
    brute = run_child([*common, "--kind", "brute"])
    subset = run_child([*common, "--kind", "subset", "--workers", "1"])
    if subset["pairs_hash"] != brute["pairs_hash"]:
        raise SystemExit("the search and brute force disagree on the subset")
    brute["extrapolated_seconds"] = brute["seconds"] * (args.n / brute["n"]) ** 2
    rows += [subset, brute]
    if args.imagededup:
        h, *_ = make_hashes(args.n, args.radius, args.planted)
        path = Path("/tmp/bench_dedup_hashes.npy")
        np.save(path, h)
        for method, sizes in (("brute_force_cython", args.imagededup_n), ("bktree", args.bktree_n)):
            for n in sizes:
                cmd = ["taskset", "-c", "0,1", args.imagededup, "-c", IMAGEDEDUP, str(n), str(args.radius),
                       str(path), method]
                result = subprocess.run(cmd, capture_output=True, text=True)
                if result.returncode:
                    print(result.stderr[-2000:], file=sys.stderr)
                    break
                row = json.loads(result.stdout.strip().splitlines()[-1])
                row["extrapolated_seconds"] = row["seconds"] * (args.n / n) ** 2
                rows.append(row)
    print(f"{args.n:,} hashes, radius {args.radius}, {args.planted:,} planted pairs at distances "
          f"0..{args.radius + 2}, {args.hot:,} in a hot bucket; cores 0,1 (taskset)")
    print("| method | hashes | time (s) | peak memory (MB) | pairs found | recall of planted pairs |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        before = f" as at {r['impl']}" if r.get("impl", "now") != "now" else ""
        runs = f" (runs: {', '.join(map(str, r['all_seconds']))})" if len(r.get("all_seconds", [])) > 1 else ""
        name = {"search": f"anyres multi-index{before}, {r.get('workers')} thread(s){runs}",
                "subset": "anyres multi-index (same pairs as brute force)", "brute": "brute force (numpy popcount)",
                "imagededup-bktree": "imagededup HashEval, BK-tree",
                "imagededup-brute_force_cython": "imagededup HashEval, brute_force_cython (its default)"}[r["kind"]]
        extra = f" (x{args.n / r['n']:.0f}^2 -> {r['extrapolated_seconds']:,.0f} s at {args.n:,}, extrapolated)" \
            if "extrapolated_seconds" in r else ""
        peak = r.get("peak_mb", r.get("peak_mb_process"))
        recall = f"{r['recall']:.4f} ({r['outside_reported']} outside reported)" if "recall" in r else "-"
        print(f"| {name} | {r['n']:,} | {r['seconds']:.2f}{extra} | {peak:,.0f} | {r['pairs']:,} | {recall} |")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
