"""`anyres-curate`: folders and URL lists in, a verified anyres dataset out.

A thin layer: flags -> config -> `entry.start` -> summary. User errors end in one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from plumbing.console import (
    MAX_SIDE,
    Parser,
    float_between,
    int_between,
    print_report,
    run_command,
    size_between,
)
from shards.format.writer import DEFAULT_SHARD_BYTES, MIN_SHARD_BYTES
from shards.intake.admission import FilterConfig
from shards.intake.pack import REJECTS_NAME
from shards.intake.probe import DEFAULT_MAX_PIXELS

from .dedup import DEFAULT_ALIGN_RADIUS, DEFAULT_MODE, DEFAULT_RADIUS, MODES
from .dedup.alignment import DEFAULT_THRESHOLD
from .fetch import STAGING_SHARD_BYTES, WorkerConfig, room_for
from .http import FetchConfig
from .pipeline import CurateConfig
from .remote import RemoteFolder, is_remote
from .sources.flickr.cli import add_flickr_commands
from .workdir import WorkDir

PROG = "anyres-curate"
DAY = 86400.0  # seconds: the longest wait any flag means


def config_from_args(args: argparse.Namespace) -> CurateConfig:
    fetch = FetchConfig(timeout=args.timeout, connect_timeout=min(args.connect_timeout, args.timeout),
                        retries=args.retries, backoff=args.backoff, max_bytes=args.max_bytes,
                        per_host=args.per_host)
    filters = FilterConfig(min_side=args.min_side, max_pixels=args.max_pixels, max_aspect=args.max_aspect)
    # staging shards are private to a run: they grow to hold the largest file allowed
    worker = WorkerConfig(fetch=fetch, filters=filters, threads=args.threads,
                          staging_shard_bytes=max(STAGING_SHARD_BYTES, room_for(args.max_bytes)))
    from .dedup import stages

    others = tuple(u if "://" in u else str(Path(u).absolute()) for u in args.exclude)
    dedup = stages(args.dedup, args.dedup_radius, args.align_radius, args.align_threshold, others)
    return CurateConfig(worker=worker, slice_size=args.slice_size, max_shard_bytes=args.shard_size, name=args.name,
                        dedup=dedup)


def make_source(args: argparse.Namespace):
    if args.command in ("flickr", "flickr-ids"):
        from .sources.flickr.cli import make_flickr_source

        return make_flickr_source(args)
    if args.command == "folder":
        from .sources.folder import FolderSource

        attribution = str(Path(args.attribution).absolute()) if args.attribution else None
        return FolderSource(str(Path(args.input).absolute()), attribution=attribution)
    from .sources.urllist import UrlListSource, default_columns

    given = {"license": args.license_col, "owner": args.owner_col, "title": args.title_col}
    columns = default_columns(str(Path(args.input).absolute()), args.url_col, given)
    return UrlListSource(str(Path(args.input).absolute()), args.url_col, columns)


def make_engine(args: argparse.Namespace):
    if args.no_ray:
        from .engine import InlineEngine

        return InlineEngine()
    from .engine import RayEngine

    return RayEngine(args.ray_address, num_cpus=args.workers, ship=not args.ray_installed)


def cmd_curate(args: argparse.Namespace) -> int:
    from .engine import LazyEngine
    from .entry import local_root, start
    from .report import LiveEvents, summary_table

    config = config_from_args(args)
    args.local_out = local_root(args.out, args.scratch)  # where a Flickr source keeps its discovery journal
    source = make_source(args)
    engine = LazyEngine(lambda: make_engine(args))
    try:
        manifest = start(source, args.out, config, engine, args.restart, LiveEvents(Console(stderr=True)),
                         add=args.add, scratch=args.scratch)
    finally:
        engine.close()
    print_report(summary_table(manifest), markup=True)
    if is_remote(args.out):
        target = RemoteFolder.parse(args.out)
        where, rejects = target.url, target.display(REJECTS_NAME)
    else:
        where, rejects = args.out, str(Path(args.out) / REJECTS_NAME)
    print(f"wrote {manifest['num_samples']} samples to {where}; rejects in {rejects}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .entry import local_root
    from .sources.flickr.journal import discovery_status
    from .status import status

    report = status(args.dataset, args.scratch)
    if flickr := discovery_status(WorkDir.of(local_root(args.dataset, args.scratch)).root):
        report["flickr"] = flickr
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from .report import status_table

        print_report(status_table(report), markup=True)
    return 0


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DATASET",
                   help="output folder, or an object store URL (s3://bucket/prefix, any fsspec URL); "
                   "rerunning resumes it")
    p.add_argument("--scratch", metavar="DIR",
                   help="for a URL --out: the local folder where the run is packed before it is uploaded "
                   "(default ~/.cache/anyres/curate; needs room for the dataset)")
    p.add_argument("--restart", action="store_true", help="discard the work folder (and a finished dataset) first")
    p.add_argument("--name", help="dataset name (default: the folder name)")
    g = p.add_argument_group("filters")
    g.add_argument("--min-side", type=int_between(1, MAX_SIDE), default=256, help="shorter displayed side (default 256)")
    g.add_argument("--max-pixels", type=int_between(1, MAX_SIDE**2), default=DEFAULT_MAX_PIXELS,
                   help="decompression-bomb guard on the declared size (default 200000000)")
    g.add_argument("--max-aspect", type=float_between(1.0 - 1e-9, MAX_SIDE), help="longer side over shorter side")
    g.add_argument("--max-bytes", type=size_between(1), default=64 * 2**20, help="bytes per file (default 64MiB)")
    g = p.add_argument_group("deduplication (the copy kept: most pixels, then quality, then licence, then arrival)")
    g.add_argument("--dedup", choices=MODES, default=DEFAULT_MODE,
                   help="crops: exact, pHash and aligned crops (up to ~6%% a side) and overlays; pixels: exact "
                   f"and pHash (resizes, re-encodes, tone); exact: same bytes only; off: nothing (default {DEFAULT_MODE})")
    g.add_argument("--dedup-radius", type=int_between(0, 32), default=DEFAULT_RADIUS,
                   help=f"pHash bits within which images are near duplicates "
                   f"(default {DEFAULT_RADIUS}, from bench/calibrate_dedup.py)")
    g.add_argument("--align-radius", type=int_between(0, 16), default=DEFAULT_ALIGN_RADIUS,
                   help=f"window-hash bits within which two images are checked by alignment, in crops mode "
                   f"(default {DEFAULT_ALIGN_RADIUS})")
    g.add_argument("--align-threshold", type=float_between(0.5, 1.0, low_open=False), default=DEFAULT_THRESHOLD,
                   help="correlation the aligned thumbnails must reach to be one image, 0.5..1, in crops mode "
                   f"(default {DEFAULT_THRESHOLD})")
    g.add_argument("--exclude", action="append", default=[], metavar="OTHER_DATASET",
                   help="drop every near duplicate of a sample of this dataset, e.g. a test set (repeatable)")
    g.add_argument("--add", action="store_true",
                   help="add this input to the finished dataset in --out: only what is new, deduplicated "
                   "against what is there; only shards that change are rewritten")
    g = p.add_argument_group("fetching")
    g.add_argument("--timeout", type=float_between(0, DAY), default=30.0,
                   help="total seconds per attempt (default 30)")
    g.add_argument("--connect-timeout", type=float_between(0, DAY), default=10.0, help="seconds to connect (default 10)")
    g.add_argument("--retries", type=int_between(0, 100), default=2,
                   help="retries after timeouts, 429 and 5xx, honouring Retry-After (default 2)")
    g.add_argument("--backoff", type=float_between(0, 3600), default=1.0, help="first retry delay in seconds (default 1)")
    g.add_argument("--threads", type=int_between(1, 1024), default=16, help="download threads per worker (default 16)")
    g.add_argument("--per-host", type=int_between(1, 1024), default=4,
                   help="concurrent connections to one host per worker (default 4)")
    g = p.add_argument_group("engine and output")
    g.add_argument("--ray-address", help="join this Ray cluster (HOST:PORT, ray://HOST:PORT, auto), with this "
                   "machine's Ray token where the cluster checks one (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                   "~/.ray/auth_token); default: start a private local Ray")
    g.add_argument("--ray-installed", action="store_true",
                   help="the cluster's nodes have anyres installed: do not ship its packages with the job")
    g.add_argument("--workers", type=int_between(1, 4096), help="CPUs of the private Ray (default: all)")
    g.add_argument("--no-ray", action="store_true", help="run every slice in this process")
    g.add_argument("--slice-size", type=int_between(1, 10**6), default=256,
                   help="items per task, the unit of resumption (default 256)")
    g.add_argument("--shard-size", type=size_between(MIN_SHARD_BYTES), default=DEFAULT_SHARD_BYTES,
                   help="byte bound per shard, headers included (default 1GB)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG, description="Fetch, validate, deduplicate and pack images, untouched, into an anyres "
        "dataset. Runs on Ray; rerunning the same command resumes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("folder", help="every image file under a folder, recursively")
    p.add_argument("input", metavar="DIR", help="the folder of images, read recursively")
    p.add_argument("--attribution", metavar="CSV",
                   help="licences and owners per file: a CSV with a 'path' column (relative to DIR) and any of "
                   "license, license_url, owner, title, date_taken, url (as anyres-shards pack --attribution)")
    add_run_flags(p)
    p.set_defaults(run=cmd_curate)
    p = sub.add_parser("urls", help="a URL list: .txt, .csv, .tsv, .jsonl or .parquet")
    p.add_argument("input", metavar="FILE", help="the list: a URL a line (.txt), or a table with a URL column")
    p.add_argument("--url-col", default="url", help="column holding the URL (default url)")
    p.add_argument("--license-col", help="column holding the licence (default: 'license' if present)")
    p.add_argument("--owner-col", help="column holding the owner (default: 'owner' if present)")
    p.add_argument("--title-col", help="column holding the title (default: 'title' if present)")
    add_run_flags(p)
    p.set_defaults(run=cmd_curate)
    add_flickr_commands(sub, add_run_flags, cmd_curate)
    p = sub.add_parser("status", help="how far a run got")
    p.add_argument("dataset", metavar="DATASET", help="the --out folder (or URL) of an anyres-curate run")
    p.add_argument("--scratch", metavar="DIR", help="for a URL: the --scratch the run was given")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, build_parser().parse_args(argv),
                       interrupted="interrupted; rerun the same command to resume")


if __name__ == "__main__":
    sys.exit(main())
