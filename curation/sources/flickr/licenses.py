"""Flickr's licences: a built-in table of its licence ids, the names `--licenses` accepts, and a
check of the table against `flickr.photos.licenses.getInfo`.

The table is built in, rather than fetched, so that a dataset's licence names do not depend on
one call at run time, and so that `--licenses` can be checked before anything starts. Flickr
adds a licence rarely (the CC 4.0 ones, ids 11 to 16, came in 2024); every run compares the
table with the API's answer and says so when they differ.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class License:
    id: int
    name: str  # the dataset's `license` field, e.g. cc-by-2.0
    title: str  # Flickr's own name for it
    url: str | None  # the dataset's `license_url`
    family: str  # what --licenses calls it, over versions: cc-by covers 2.0 and 4.0
    reuse: bool  # commercial use and modification allowed: a training set may use it freely


def _cc(id: int, kind: str, version: str, reuse: bool) -> License:
    return License(id, f"cc-{kind}-{version}", f"CC {kind.upper()} {version}",
                   f"https://creativecommons.org/licenses/{kind}/{version}/", f"cc-{kind}", reuse)


LICENSES: dict[int, License] = {lic.id: lic for lic in [
    License(0, "all-rights-reserved", "All Rights Reserved", None, "all-rights-reserved", False),
    _cc(1, "by-nc-sa", "2.0", False),
    _cc(2, "by-nc", "2.0", False),
    _cc(3, "by-nc-nd", "2.0", False),
    _cc(4, "by", "2.0", True),
    _cc(5, "by-sa", "2.0", True),
    _cc(6, "by-nd", "2.0", False),
    License(7, "no-known-copyright-restrictions", "No known copyright restrictions",
            "https://www.flickr.com/commons/usage/", "nkcr", True),
    License(8, "us-government-work", "United States Government Work", "http://www.usa.gov/copyright.shtml",
            "usgov", True),
    License(9, "cc0-1.0", "Public Domain Dedication (CC0)", "https://creativecommons.org/publicdomain/zero/1.0/",
            "cc0", True),
    License(10, "pdm-1.0", "Public Domain Mark", "https://creativecommons.org/publicdomain/mark/1.0/", "pdm", True),
    _cc(11, "by", "4.0", True),
    _cc(12, "by-sa", "4.0", True),
    _cc(13, "by-nd", "4.0", False),
    _cc(14, "by-nc", "4.0", False),
    _cc(15, "by-nc-sa", "4.0", False),
    _cc(16, "by-nc-nd", "4.0", False),
]}

ALL_RIGHTS_RESERVED = 0
# The default: licences that allow reuse, commercial and modified (Flickr's own "commercial use
# and mods allowed" filter). A trained generator is a derivative, so NoDerivs is not in it.
REUSE: tuple[int, ...] = tuple(sorted(i for i, lic in LICENSES.items() if lic.reuse))
GROUPS = {
    "reuse": REUSE,
    # Everything with a licence that allows some reuse; all-rights-reserved is never in a group.
    "any-open": tuple(sorted(i for i in LICENSES if i != ALL_RIGHTS_RESERVED)),
}
ALIASES = {"arr": "all-rights-reserved", "cc0-1.0": "cc0", "pdm-1.0": "pdm",
           "no-known-copyright-restrictions": "nkcr", "us-government-work": "usgov"}


def license_of(id: int | str) -> License:
    """The licence of a Flickr licence id; an id the table lacks still gets a stable name."""
    number = int(id)
    return LICENSES.get(number) or License(number, f"flickr-license-{number}", f"Flickr licence {number}",
                                           None, f"flickr-license-{number}", False)


def parse_licenses(text: str) -> tuple[int, ...]:
    """`cc-by,cc-by-sa,cc0,pdm` -> sorted Flickr licence ids. Accepts families (cc-by: every
    version), exact names (cc-by-2.0), numeric ids and the groups `reuse` and `any-open`.
    All-rights-reserved is only ever taken when it is named (`all-rights-reserved`, `arr`, `0`)."""
    ids: set[int] = set()
    for word in (w.strip().lower() for w in text.split(",")):
        if not word:
            continue
        word = ALIASES.get(word, word)
        if word in GROUPS:
            ids.update(GROUPS[word])
        elif word.isdigit() and int(word) in LICENSES:
            ids.add(int(word))
        elif matches := [i for i, lic in LICENSES.items() if word in (lic.family, lic.name)]:
            ids.update(matches)
        else:
            known = sorted({lic.family for lic in LICENSES.values()} | set(GROUPS))
            raise argparse.ArgumentTypeError(f"unknown licence {word!r}; use one of {', '.join(known)}, "
                                             "an exact name such as cc-by-2.0, or a Flickr licence id")
    if not ids:
        raise argparse.ArgumentTypeError("no licence given")
    return tuple(sorted(ids))


def describe_licenses(ids: Iterable[int]) -> list[str]:
    return [license_of(i).name for i in sorted(ids)]


def _same_url(a: str | None, b: str | None) -> bool:
    def norm(u: str | None) -> str:
        return (u or "").strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")

    return norm(a) == norm(b)


def compare_with_api(response: dict[str, Any]) -> list[str]:
    """Differences between the built-in table and a parsed flickr.photos.licenses.getInfo
    answer, one line each; empty when they agree. Names are Flickr's to change; ids and URLs
    are what a licence is. All-rights-reserved's URL is a help page that moves, so it is not
    compared."""
    listed = (response.get("licenses") or {}).get("license") or []
    theirs = {int(entry["id"]): entry for entry in listed}
    problems = []
    for id in sorted(set(theirs) - set(LICENSES)):
        problems.append(f"licence {id} ({theirs[id].get('name')}) is not in the built-in table")
    for id in sorted(set(LICENSES) - set(theirs)):
        problems.append(f"licence {id} ({LICENSES[id].name}) is in the built-in table but not on Flickr")
    for id in sorted(set(LICENSES) & set(theirs)):
        if id != ALL_RIGHTS_RESERVED and not _same_url(LICENSES[id].url, theirs[id].get("url")):
            problems.append(f"licence {id}: built-in URL {LICENSES[id].url}, Flickr says {theirs[id].get('url')}")
    return problems

