"""Per-core rates of the curation steps that docs/scaling.md's capacity model needs.

    .venv/bin/python bench/bench_scale.py discovery [--photos-n 100000]
    .venv/bin/python bench/bench_scale.py stages [--photos ../shared/photos] [--n 600]
    .venv/bin/python bench/bench_scale.py plan [--n 1000000]

discovery  Flickr search discovery (`SearchDiscovery`, the real code) against the fake Flickr of
           the tests (tests/curation/fake_flickr.py, in another process on core 1), with
           `--photos-n` photos whose upload times are uniform over 2008-2024 and no rate limit:
           search calls made, photos found per call (Flickr's 500 a page, less the windows that
           bisection probes and the short last pages), the driver's CPU time per call, and the
           journal's bytes per photo. The fake's own speed does not count.
stages     One core (this process pinned to core 0; the HTTP server that serves the corpus on
           core 1): a URL list of bench_curate.py's corpus (`--n` JPEGs made from the photos)
           through the real steps of a run, each timed: fetch (download, probe, signature,
           staging write; inline engine, 8 threads), reading the staged metadata back, the dedup
           plan (`--dedup crops`), and pack (every kept byte copied into the final shards).
plan       The driver's dedup planning on metadata alone, at `--n` samples, in a fresh process:
           index rows and signatures as staging holds them (random hashes, as distinct images
           have, with 1% exact copies and 1% near copies by pHash planted), then repeated keys,
           each stage of `--dedup crops` (exact, pHash, crops), and the records a run writes;
           times and the process's peak resident memory. The table comes in slices as
           staging holds them (`--slice-rows`) and is combined as `read_staging` combines it;
           `--raw-chunks` plans on one chunk per slice, as the driver did before (the n² case).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {core})


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# discovery -------------------------------------------------------------------------------------

def serve_fake(n: int, seed: int, conn) -> None:
    pin(1)
    from tests.curation.fake_flickr import FakeFlickr, FakePhoto, day

    rng = np.random.default_rng(seed)
    uploads = rng.integers(day(2008, 1, 1), day(2024, 1, 1), size=n)
    fake = FakeFlickr([FakePhoto(str(10_000_000 + i), int(t)) for i, t in enumerate(uploads)])
    conn.send(fake.endpoint)
    conn.recv()  # until the parent is done
    fake.stop()


def cmd_discovery(args: argparse.Namespace) -> dict:
    from curation.sources.flickr.api import ApiConfig, Credentials, FlickrClient
    from curation.sources.flickr.discovery import SearchDiscovery, SearchQuery
    from curation.sources.flickr.journal import Journal
    from tests.curation.fake_flickr import KEY, SECRET, day

    pin(0)
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve_fake, args=(args.photos_n, args.seed, child), daemon=True)
    server.start()
    endpoint = parent.recv()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-discovery-"))
    try:
        client = FlickrClient(Credentials(KEY, SECRET), ApiConfig(endpoint=endpoint, calls_per_hour=3.6e9))
        query = SearchQuery(text="mountain", min_upload_date=day(2008, 1, 1), max_upload_date=day(2024, 1, 1))
        journal = Journal(work / "journal")
        discovery = SearchDiscovery(query, lambda: client, journal, accept=lambda r: True)
        wall, cpu = time.perf_counter(), time.process_time()
        found = sum(1 for _ in discovery.records())
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu  # this process: the driver's side
        cursor = journal.cursor()
        log_bytes = (work / "journal" / "photos.jsonl").stat().st_size
    finally:
        parent.send("stop")
        server.join(10)
        shutil.rmtree(work, ignore_errors=True)
    calls = cursor["calls"]
    return {"photos": found, "calls": calls, "photos_per_call": round(found / calls, 1),
            "windows": len(cursor["windows"]), "bisected": cursor["bisected"],
            "driver_cpu_ms_per_call": round(1e3 * cpu / calls, 2), "wall_s": round(wall, 1),
            "journal_bytes_per_photo": round(log_bytes / found)}


# stages ----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cmd_stages(args: argparse.Namespace) -> dict:
    from bench_curate import make_corpus

    from curation.cli import build_parser, config_from_args, make_source
    from curation.dedup import plan_merges, repeated_keys
    from curation.engine import InlineEngine
    from curation.pack import final_rejects, pack, read_staging, write_records
    from curation.pipeline import Events, prepare
    from curation.slices import fetch_phase

    corpus = make_corpus(Path(args.photos), args.n)
    files = sorted(corpus.glob("img-*.jpg"))
    nbytes = sum(f.stat().st_size for f in files)
    pin(0)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(corpus)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=lambda: pin(1))
    work_dir = Path(tempfile.mkdtemp(prefix="bench-scale-stages-"))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        listing = work_dir / "urls.txt"
        listing.write_text("".join(f"http://127.0.0.1:{port}/{f.name}\n" for f in files))
        out = work_dir / "ds"
        cli = build_parser().parse_args(["urls", str(listing), "--out", str(out), "--no-ray", "--threads", "8",
                                         "--per-host", "8", "--slice-size", str(args.slice_size)])
        config = config_from_args(cli)
        source = make_source(cli)
        work = prepare(out, source, config, restart=False)
        t, c = [time.perf_counter()], [time.process_time()]

        def lap() -> None:
            t.append(time.perf_counter())
            c.append(time.process_time())

        plan = fetch_phase(source, config.slice_size, config.worker, work, InlineEngine(), Events())
        lap()
        kept, rejects = read_staging(work, plan.numbers)
        lap()
        repeats, relabel = repeated_keys(kept, rejects)
        merges = plan_merges(kept, config.dedup, repeats)
        write_records(out, final_rejects(rejects, relabel, merges), merges)
        lap()
        manifest = pack(out, work, plan.numbers, merges, config.writer, {"tool": "bench"})
        lap()
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work_dir, ignore_errors=True)
    (fetch, read, dedup, packed), cpu = (b - a for a, b in zip(t, t[1:])), [b - a for a, b in zip(c, c[1:])]
    kept_bytes = manifest["total_bytes"]
    # Wall time on a core that other jobs may share, and this process's CPU time (all its
    # threads): on a busy machine the per-CPU-second rate is the per-core rate.
    return {"images": len(files), "mb": round(nbytes / 1e6), "mean_kb": round(nbytes / len(files) / 1e3),
            "slices": plan.slices, "kept": manifest["num_samples"],
            "fetch_s": round(fetch, 2), "fetch_cpu_s": round(cpu[0], 2),
            "fetch_images_per_s": round(len(files) / fetch, 2),
            "fetch_images_per_cpu_s": round(len(files) / cpu[0], 2),
            "fetch_mb_per_cpu_s": round(nbytes / cpu[0] / 1e6, 1),
            "read_staging_ms_per_slice": round(1e3 * read / plan.slices, 1),
            "dedup_s": round(dedup, 3),
            "pack_s": round(packed, 2), "pack_cpu_s": round(cpu[3], 2),
            "pack_mb_per_s": round(kept_bytes / packed / 1e6, 1),
            "pack_mb_per_cpu_s": round(kept_bytes / cpu[3] / 1e6, 1),
            "pack_images_per_s": round(manifest["num_samples"] / packed, 1)}


# plan ------------------------------------------------------------------------------------------

def hexes(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    return np.array([row.tobytes().hex() for row in raw], dtype=object)


def make_kept(n: int, seed: int) -> pa.Table:
    """`n` kept rows as `read_staging` returns them: index columns without shard and offset,
    the signature columns, `slice` and `row`."""
    from curation.dedup.image_signature import THUMB_SIDE, WINDOWS

    rng = np.random.default_rng(seed)
    sha, phash = hexes(rng, n, 32), hexes(rng, n, 8)
    windows = rng.integers(0, 256, size=(n, 8 * len(WINDOWS)), dtype=np.uint8)
    thumbs = rng.integers(0, 256, size=(n, THUMB_SIDE**2), dtype=np.uint8)
    copies = rng.choice(n, size=(n // 50, 2), replace=False)  # 1% exact copies, 1% near copies
    exact, near = copies[: n // 100], copies[n // 100:]
    sha[exact[:, 1]], phash[exact[:, 1]] = sha[exact[:, 0]], phash[exact[:, 0]]
    for pairs in (exact, near):  # a copy's signature is its original's
        windows[pairs[:, 1]], thumbs[pairs[:, 1]] = windows[pairs[:, 0]], thumbs[pairs[:, 0]]
    flips = 1 << rng.integers(0, 64, size=len(near)).astype(np.uint64)
    phash[near[:, 1]] = [f"{int(h, 16) ^ int(f):016x}" for h, f in zip(phash[near[:, 0]], flips)]
    width, height = rng.integers(800, 6000, size=n), rng.integers(600, 4000, size=n)
    ids = [f"img-{i:09d}.jpg" for i in range(n)]
    urls = [f"http://photos.example.org/{name}" for name in ids]
    return pa.table({
        "key": [f"url-{i:020x}" for i in range(n)], "width": pa.array(width, pa.int32()),
        "height": pa.array(height, pa.int32()), "orientation": pa.array(np.ones(n), pa.int8()),
        "format": pa.array(["jpeg"] * n), "ext": pa.array(["jpg"] * n), "mode": pa.array(["RGB"] * n),
        "nbytes": pa.array(width * height // 4, pa.int64()), "sha256": pa.array(sha, pa.string()),
        "phash": pa.array(phash, pa.string()), "source": pa.array(["url"] * n), "source_id": urls, "url": urls,
        "license": pa.array(["cc-by-4.0"] * n), "license_url": pa.nulls(n, pa.string()),
        "owner": pa.array(["Ana Lima"] * n), "title": ids, "date_taken": pa.nulls(n, pa.string()),
        "dup_count": pa.array(np.zeros(n), pa.int32()),
        "windows": pa.FixedSizeBinaryArray.from_buffers(pa.binary(8 * len(WINDOWS)), n,
                                                        [None, pa.py_buffer(windows.tobytes())]),
        "thumb": pa.FixedSizeBinaryArray.from_buffers(pa.binary(THUMB_SIDE**2), n,
                                                      [None, pa.py_buffer(thumbs.tobytes())]),
        "quality": pa.array(rng.integers(70, 96, size=n), pa.int16()),
        "slice": pa.array(np.arange(n) // 256, pa.int64()), "row": pa.array(np.arange(n) % 256, pa.int64())})


def plan_child(path: str, slice_rows: int, raw_chunks: bool = False) -> dict:
    """The driver's steps between fetch and pack, on the table at `path`, each timed. With
    `slice_rows`, the table comes in slices of that many rows, as staging holds it, and goes
    through `staged_table` as in `read_staging`; 0 skips that step. `--raw-chunks` leaves one
    chunk per slice, as the driver planned on before `staged_table` (the n² case)."""
    from curation.dedup import MergePlan, places, repeated_keys, stages
    from curation.items import REJECTS_SCHEMA
    from curation.pack import final_rejects, staged_table, surviving_signatures

    times = {}
    t, c = time.perf_counter(), time.process_time()
    kept = pq.read_table(path).combine_chunks()
    if slice_rows:
        slices = [kept.slice(i, slice_rows) for i in range(0, kept.num_rows, slice_rows)]
        kept = pa.concat_tables(slices) if raw_chunks else staged_table(slices)
    times["read_s"] = time.perf_counter() - t
    times["chunks"] = kept["key"].num_chunks
    t = time.perf_counter()
    rejects = REJECTS_SCHEMA.empty_table()
    merges, relabel = repeated_keys(kept, rejects)
    times["repeated_keys_s"] = time.perf_counter() - t
    where = places(kept)
    for stage in stages("crops"):  # plan_merges' loop, one stage at a time
        t = time.perf_counter()
        gone = {m.dropped for m in merges}
        remaining = kept.filter(pa.array([p not in gone for p in where], pa.bool_())) if gone else kept
        found = stage.plan(remaining)
        merges += found
        times[f"{stage.name}_s"] = time.perf_counter() - t
        times[f"{stage.name}_merges"] = len(found)
    t = time.perf_counter()
    plan = MergePlan(kept, merges)
    final_rejects(rejects, relabel, plan)
    plan.records()
    surviving_signatures(plan)
    plan.summary()
    plan.absorbed()
    times["records_s"] = time.perf_counter() - t
    times["cpu_s"] = time.process_time() - c
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in times.items()} | {"peak_mb": round(peak_mb())}


def cmd_plan(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-scale-plan-"))
    try:
        t = time.perf_counter()
        path = work / "kept.parquet"
        pq.write_table(make_kept(args.n, args.seed), path)
        made = time.perf_counter() - t
        code = f"import json, sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import bench_scale; " \
               f"print(json.dumps(bench_scale.plan_child({str(path)!r}, {args.slice_rows}, {args.raw_chunks})))"
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
        result = json.loads(out.stdout.strip().splitlines()[-1])
        return {"n": args.n, "slice_rows": args.slice_rows, "raw_chunks": args.raw_chunks, "table_mb_on_disk": round(path.stat().st_size / 1e6), "made_s": round(made, 1),
                **result, "process_s": round(wall, 1)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("discovery", help="Flickr search discovery against the fake Flickr")
    p.add_argument("--photos-n", type=int, default=100_000, help="photos the fake Flickr holds (default 100000)")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("stages", help="fetch, read staging, dedup plan and pack of a URL list, on one core")
    p.add_argument("--photos", default=str(ROOT.parent / "shared" / "photos"))
    p.add_argument("--n", type=int, default=600, help="JPEGs in bench_curate.py's corpus (default 600)")
    p.add_argument("--slice-size", type=int, default=256)
    p = sub.add_parser("plan", help="the driver's dedup planning on metadata at --n samples")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--slice-rows", type=int, default=256,
                   help="rows per staged slice (default 256, the default --slice-size); 0: one table")
    p.add_argument("--raw-chunks", action="store_true",
                   help="plan on one chunk per slice, as the driver did before read_staging combined them")
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run = {"discovery": cmd_discovery, "stages": cmd_stages, "plan": cmd_plan}[args.command]
    print(json.dumps({"command": args.command, **run(args)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
