"""`anyres-shards`: inspect, check, plot, subset and pack anyres datasets.

A thin layer: flags -> config -> library call -> formatted result. User errors end in one line
on stderr and exit code 2; `verify` findings exit 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from plumbing.console import (
    MAX_SIDE,
    Parser,
    float_between,
    int_between,
    print_report,
    printable,
    printable_json,
    progress_bar,
    run_command,
    size_between,
)
from plumbing.errors import DatasetError
from shards.format.index import IndexFilter
from shards.format.reader import Dataset
from shards.format.schema import check_key
from shards.format.writer import DEFAULT_SHARD_BYTES, MIN_SHARD_BYTES, WriterConfig
from shards.intake.probe import DEFAULT_MAX_PIXELS
from shards.tools.stats import summarize

PROG = "anyres-shards"
side = int_between(0, MAX_SIDE)
megapixels = float_between(0, MAX_SIDE**2 / 1e6, low_open=False)
shard_size = size_between(MIN_SHARD_BYTES)


def root_hash_arg(text: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text.strip()):
        raise argparse.ArgumentTypeError(f"not a root hash (64 hex digits): {text[:80]!r}")
    return text.strip().lower()


def add_filter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("selection (every given criterion must hold)")
    group.add_argument("--min-side", type=side, help="keep images whose shorter side is at least this")
    group.add_argument("--max-side", type=side, help="keep images whose longer side is at most this")
    group.add_argument("--min-megapixels", type=megapixels, help="keep images of at least this many megapixels")
    group.add_argument("--license", action="append", default=[], help="keep this licence (repeatable)")
    group.add_argument("--source", action="append", default=[], choices=("flickr", "url", "folder"),
                       help="only samples from this source (repeat for several)")
    group.add_argument("--format", action="append", default=[], help="keep this format, e.g. jpeg (repeatable)")
    group.add_argument("--key", action="append", default=[], help="keep this key (repeatable)")
    group.add_argument("--keys-file", type=Path, help="keep the keys listed in this file, one a line")


def filter_from_args(args: argparse.Namespace) -> IndexFilter:
    keys = list(args.key)
    if args.keys_file:
        try:
            keys += [line.strip() for line in args.keys_file.read_text().splitlines() if line.strip()]
        except OSError as exc:
            raise DatasetError(f"cannot read keys file {args.keys_file}: {exc.strerror}") from None
    return IndexFilter(
        min_side=args.min_side, max_side=args.max_side, min_megapixels=args.min_megapixels,
        licenses=tuple(args.license), sources=tuple(args.source), formats=tuple(args.format),
        keys=tuple(keys),
    )


def cmd_info(args: argparse.Namespace) -> int:
    from shards.tools.render import info_report, root_line

    ds = Dataset(args.dataset)
    stats = summarize(ds.index)
    if args.json:
        manifest = {k: v for k, v in ds.manifest.items() if k != "shards"}
        print(json.dumps({**manifest, "stats": stats}, indent=2))  # ensure_ascii: escapes controls
    else:
        print_report(info_report(ds.manifest, stats))
        print(root_line(ds.manifest))
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    ds = Dataset(args.dataset)
    rows = ds.select(filter_from_args(args))
    if args.limit is not None:
        rows = rows.slice(0, args.limit)
    columns = ["key", "width", "height", "format", "license", "shard"]
    for row in rows.select(columns).to_pylist():
        size = f"{row['width']}x{row['height']}"
        fields = (row["key"], size, row["format"], row["license"] or "-", row["shard"])
        print("\t".join(printable(f) for f in fields))  # dataset text: escape control characters
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    ds = Dataset(args.dataset)
    key = check_key(args.key)
    sample = ds.get(key)
    doc = json.loads(sample.meta.to_json_bytes())
    print(printable_json({**doc, "shard": sample.shard, "offset": sample.offset}))
    if args.output:
        from shards.tools.export import write_sample_image

        # Named from the key asked for and the index's extension, both checked: never from the json.
        path = write_sample_image(sample, args.output, key, ds.row(key)["ext"], apply_orientation=args.orient)
        print(f"wrote {printable(path)}", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from shards.tools.verify import verify_dataset

    total = Dataset(args.dataset).manifest["num_samples"]
    with progress_bar("verify" + (" --deep" if args.deep else ""), total) as advance:
        report = verify_dataset(args.dataset, deep=args.deep, progress=advance, expect=args.expect)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))  # ensure_ascii: escapes control characters
    else:
        for problem in report.problems:
            print(printable(problem))
        verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        print(f"{verdict}: {report.samples_checked} samples in {report.shards_checked} shards checked"
              + (" (deep)" if args.deep else "")
              + (", root hash as expected" if args.expect and report.ok else ""))
        print(f"root hash {report.root_hash or 'not computed: a shard could not be read through'}")
        for note in report.notes:
            print(f"note: {printable(note)}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_plot(args: argparse.Namespace) -> int:
    from shards.tools.plots import plot_dataset

    ds = Dataset(args.dataset)
    # The name is dataset text: escaped, and its "$" kept from starting matplotlib's mathtext.
    title = printable(ds.manifest.get("name"))[:200].replace("$", r"\$")
    path = plot_dataset(ds.index, args.output, title=title)
    print(f"wrote {path}")
    return 0


def cmd_grid(args: argparse.Namespace) -> int:
    from shards.tools.plots import contact_sheet

    ds = Dataset(args.dataset)
    path = contact_sheet(ds, args.output, n=args.n, seed=args.seed, thumb=args.thumb)
    print(f"wrote {path}")
    return 0


def cmd_subset(args: argparse.Namespace) -> int:
    from shards.tools.subset import write_subset

    parent = Dataset(args.dataset)
    where = filter_from_args(args)
    config = WriterConfig(max_shard_bytes=args.shard_size, name=args.name)
    with progress_bar("subset", parent.select(where).num_rows) as advance:
        manifest = write_subset(parent, args.out, where, config, progress=advance)
    print(f"wrote {manifest['num_samples']} samples in {manifest['num_shards']} shards to {args.out}")
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from shards.intake.pack import PackConfig, image_files, pack_folder

    config = PackConfig(min_side=args.min_side, max_pixels=args.max_pixels,
                        max_shard_bytes=args.shard_size, name=args.name,
                        attribution=str(args.attribution) if args.attribution else None)
    folder = Path(args.folder)
    total = sum(1 for _ in image_files(folder)) if folder.is_dir() else None
    with progress_bar("pack", total) as advance:
        manifest = pack_folder(folder, args.out, config, progress=advance)
    counts, rejects = manifest["curation"]["counts"], manifest["curation"]["rejects"]
    why = " (" + ", ".join(f"{reason}: {n}" for reason, n in rejects.items()) + ")" if rejects else ""
    print(f"wrote {counts['kept']} samples in {manifest['num_shards']} shards to {args.out}; "
          f"{counts['rejected']} rejected{why}, listed in {args.out}/work/rejects.parquet")
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from shards.tools.card import write_card

    ds = Dataset(args.dataset)
    if args.output is None and ds.loc.kind != "local":
        raise DatasetError(f"{args.dataset} is not a local folder: give -o DIR for the card")
    paths = write_card(ds, args.output if args.output is not None else Path(ds.loc.root))
    print(f"wrote {', '.join(printable(p) for p in paths)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Inspect and manage anyres datasets: native-resolution images stored untouched "
        "in WebDataset shards with an index.parquet and a dataset.json. DATASET is a folder, an "
        "http(s):// URL prefix or an fsspec URL (s3://, gs://, ...).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="summary: samples, bytes, resolution, formats, licences, curation")
    p.add_argument("dataset", metavar="DATASET", help="the dataset: a folder, an http(s):// URL prefix or an fsspec URL")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("ls", help="one line per sample: key, size, format, licence, shard")
    p.add_argument("dataset", metavar="DATASET", help="the dataset: a folder, an http(s):// URL prefix or an fsspec URL")
    add_filter_flags(p)
    p.add_argument("--limit", type=int_between(0, 2**63 - 1), help="print at most this many lines")
    p.set_defaults(run=cmd_ls)

    p = sub.add_parser("show", help="a sample's metadata, and its image written out with -o")
    p.add_argument("dataset", metavar="DATASET", help="the dataset: a folder, an http(s):// URL prefix or an fsspec URL")
    p.add_argument("key", metavar="KEY", help="the sample's key (the first column of `ls`)")
    p.add_argument("-o", "--output", type=Path,
                   help="write the image here: a file, or a folder (named KEY.EXT inside it)")
    p.add_argument("--orient", action="store_true",
                   help="apply the EXIF orientation (re-encodes; default writes the stored bytes)")
    p.set_defaults(run=cmd_show)

    p = sub.add_parser("verify", help="check shards, index and manifest agree; exit 1 on any problem")
    p.add_argument("dataset", metavar="DATASET", help="the dataset: a folder, an http(s):// URL prefix or an fsspec URL")
    p.add_argument("--deep", action="store_true", help="also decode every image, check sha256, size, phash")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--expect", type=root_hash_arg, metavar="ROOT",
                   help="also require this root hash (64 hex digits, as its publisher announced it): "
                   "proves the dataset is exactly that one")
    p.set_defaults(run=cmd_verify)

    p = sub.add_parser("plot", help="PNG: width vs height, min-side histogram, megapixel CDF")
    p.add_argument("dataset", metavar="DATASET", help="the dataset: a folder, an http(s):// URL prefix or an fsspec URL")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.png", help="the PNG to write")
    p.set_defaults(run=cmd_plot)

    p = sub.add_parser("grid", help="PNG contact sheet of random samples, native size written on each")
    p.add_argument("dataset", metavar="DATASET", help="the dataset: a folder, an http(s):// URL prefix or an fsspec URL")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.png", help="the PNG to write")
    p.add_argument("--n", type=int_between(1, 400), default=36, help="number of samples, at most 400 (default 36)")
    p.add_argument("--seed", type=int_between(0), default=0, help="random seed for the selection (default 0)")
    p.add_argument("--thumb", type=int_between(16, 1024), default=256,
                   help="cell size in pixels, 16 to 1024 (default 256)")
    p.set_defaults(run=cmd_grid)

    p = sub.add_parser("card", help="README-style dataset card (CARD.md, CARD.html) and the complete "
                       "attribution list (ATTRIBUTION.md, ATTRIBUTION.csv)",
                       description="Write a dataset card (CARD.md, CARD.html, card-sizes.png): counts, size "
                       "plot, licences, sources, the curation config, rejects and deduplication; and the complete "
                       "attribution list (ATTRIBUTION.md, ATTRIBUTION.csv): every sample's title, author, licence "
                       "with its URL and source page, which CC BY and CC BY-SA require when the images are shared. "
                       "verify ignores these files.")
    p.add_argument("dataset", metavar="DATASET", help="the dataset: a folder, or a URL (then give -o)")
    p.add_argument("-o", "--output", type=Path, metavar="DIR",
                   help="folder to write the card into (default: the dataset folder itself; required when "
                   "DATASET is a URL)")
    p.set_defaults(run=cmd_card)

    p = sub.add_parser("subset", help="new dataset from selected samples, bytes copied untouched")
    p.add_argument("dataset", metavar="DATASET", help="the dataset: a folder, an http(s):// URL prefix or an fsspec URL")
    p.add_argument("out", metavar="OUT", help="a new local folder")
    add_filter_flags(p)
    p.add_argument("--shard-size", type=shard_size, default=DEFAULT_SHARD_BYTES,
                   help="byte bound per shard, headers included (default 1GB)")
    p.add_argument("--name", help="dataset name (default: the folder name)")
    p.set_defaults(run=cmd_subset)

    p = sub.add_parser("pack", help="store a local folder of images, untouched, as a dataset")
    p.add_argument("folder", metavar="DIR", help="the folder of images, read recursively")
    p.add_argument("out", metavar="OUT", help="a new local folder")
    p.add_argument("--min-side", type=side, default=1, help="reject images whose shorter side is below this")
    p.add_argument("--max-pixels", type=int_between(1, MAX_SIDE**2), default=DEFAULT_MAX_PIXELS, help="decompression-bomb guard")
    p.add_argument("--attribution", type=Path, metavar="FILE.csv",
                   help="provenance per file: a 'path' column (relative to DIR) and any of "
                   "license, license_url, owner, title, date_taken, url")
    p.add_argument("--shard-size", type=shard_size, default=DEFAULT_SHARD_BYTES,
                   help="byte bound per shard, headers included (default 1GB)")
    p.add_argument("--name", help="dataset name (default: the folder name)")
    p.set_defaults(run=cmd_pack)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
