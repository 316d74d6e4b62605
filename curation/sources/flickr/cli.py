"""`anyres-curate flickr` and `anyres-curate flickr-ids`: their flags, and the source they make.

Kept apart from cli.py so that flickrapi is imported only when a Flickr command runs. The key is
checked with one API call before Ray starts: a wrong key costs seconds, and says so in one line.
"""

from __future__ import annotations

import argparse
import calendar
import dataclasses
import hashlib
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from plumbing.console import float_between, int_between
from shards.format.manifest import MANIFEST_NAME

from ...workdir import WorkDir
from .licenses import REUSE, parse_licenses

LAST_DATE = 253402300799  # 9999-12-31T23:59:59Z, in unix seconds
DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?Z?")


def parse_date(end_of_day: bool) -> Callable[[str], int]:
    """YYYY-MM-DD[THH:MM[:SS]] in UTC, or unix seconds. A bare date given as the upper bound
    means the end of that day, so `--max-upload-date 2020-12-31` includes the 31st."""
    def parse(text: str) -> int:
        text = text.strip()
        if text.isdigit():
            if int(text) > LAST_DATE:
                raise argparse.ArgumentTypeError(f"not a date: {text!r} is after the year 9999")
            return int(text)
        m = DATE.fullmatch(text)
        if not m:
            raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or unix seconds)")
        y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
        try:
            seconds = calendar.timegm((y, mo, d, h, mi, s))
            if not 1 <= mo <= 12 or not 1 <= d <= calendar.monthrange(y, mo)[1]:
                raise ValueError
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"not a date: {text!r}") from None
        return seconds + 86399 if end_of_day and m.group(4) is None else seconds

    return parse


def add_api_flags(p: argparse.ArgumentParser) -> None:
    from .api import REST_URL

    g = p.add_argument_group("Flickr API")
    g.add_argument("--licenses", type=parse_licenses, default=REUSE, metavar="LIST",
                   help="licences to take, e.g. cc-by,cc-by-sa,cc0,pdm (families cover every version; "
                   "also exact names, ids, any-open). Default: reuse, the ones that allow commercial use "
                   "and changes. all-rights-reserved only when named")
    g.add_argument("--endpoint", default=REST_URL, metavar="URL",
                   help="Flickr REST URL, or a compatible server (default: Flickr's)")
    g.add_argument("--credentials", metavar="FILE",
                   help="file with the API key and secret (default: FLICKR_API_KEY and FLICKR_API_SECRET)")
    g.add_argument("--calls-per-hour", type=float_between(0, 10**9), default=3600.0,
                   help="API calls per hour, retries included (default 3600, Flickr's limit)")
    g.add_argument("--api-retries", type=int_between(0, 100), default=5,
                   help="retries of an API call after HTTP 5xx/429 or 'service unavailable' (default 5)")
    g.add_argument("--api-backoff", type=float_between(0, 3600, low_open=False), default=2.0, help=argparse.SUPPRESS)


def add_flickr_commands(sub, add_run_flags: Callable[[argparse.ArgumentParser], None], run) -> None:
    p = sub.add_parser("flickr", help="search Flickr for photos at their largest size, licence-aware")
    p.add_argument("--text", help="free-text search (title, description, tags)")
    p.add_argument("--tags", type=lambda t: tuple(x.strip() for x in t.split(",") if x.strip()), default=(),
                   help="comma-separated tags")
    p.add_argument("--tag-mode", choices=["any", "all"], default="any", help="photos with any (default) or all tags")
    p.add_argument("--min-upload-date", type=parse_date(False), metavar="DATE",
                   help="uploaded on or after (UTC; default: 2004, before Flickr's first upload)")
    p.add_argument("--max-upload-date", type=parse_date(True), metavar="DATE",
                   help="uploaded on or before (UTC; a bare date includes that day; default: when the run started)")
    p.add_argument("--max-photos", type=int_between(1, 10**12), help="stop discovery after this many photos to download")
    p.add_argument("--per-page", type=int_between(1, 500), default=500, help=argparse.SUPPRESS)
    p.add_argument("--result-cap", type=int_between(1, 10**6), default=4000, help=argparse.SUPPRESS)
    add_api_flags(p)
    add_run_flags(p)
    p.set_defaults(run=run)
    p = sub.add_parser("flickr-ids", help="photos named by id: one id a line, or <licence>_<id>.jpg lines")
    p.add_argument("input", metavar="LIST", help="a text file of Flickr photo ids, one a line")
    add_api_flags(p)
    add_run_flags(p)
    p.set_defaults(run=run)


def make_flickr_source(args: argparse.Namespace):
    from .api import ApiConfig, load_credentials
    from .discovery import FLICKR_START, SearchQuery
    from .source import FlickrIdsSource, FlickrSource

    credentials = load_credentials(args.credentials)
    api = ApiConfig(endpoint=args.endpoint, calls_per_hour=args.calls_per_hour, retries=args.api_retries,
                    backoff=args.api_backoff)
    out = getattr(args, "local_out", None) or Path(args.out).absolute()
    common = {"api": api, "credentials": credentials, "state": "", "min_side": args.min_side}
    if args.command == "flickr":
        query = SearchQuery(text=args.text, tags=args.tags, tag_mode=args.tag_mode, licenses=args.licenses,
                            min_upload_date=FLICKR_START if args.min_upload_date is None else args.min_upload_date,
                            max_upload_date=args.max_upload_date, max_photos=args.max_photos,
                            per_page=args.per_page, result_cap=args.result_cap)
        source = FlickrSource(query=query, **common)
    else:
        source = FlickrIdsSource(path=str(Path(args.input).absolute()), licenses=args.licenses, **common)
    # One journal per input, named by what it discovers: a first run and each --add of another
    # query into the same dataset resume their own discovery.
    digest = hashlib.sha1(json.dumps(source.describe(), sort_keys=True).encode()).hexdigest()[:12]
    state = WorkDir.of(out).flickr_journal(digest)
    if args.restart:
        shutil.rmtree(state, ignore_errors=True)
    source = dataclasses.replace(source, state=str(state))
    if args.restart or getattr(args, "add", False) or not (out / MANIFEST_NAME).exists():  # work to do
        problems = source.preflight()
        if problems:
            print(f"anyres-curate: warning: Flickr's licences differ from the built-in table: {'; '.join(problems)}",
                  file=sys.stderr)
    return source
