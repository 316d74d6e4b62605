"""`anyres-shards card`: a README-style card of a dataset, beside it, with its attribution list.

The card says what the dataset holds (counts, sizes, licences, sources), how it was made (the
manifest's curation record: config, counts, rejects, deduplication) and links to the complete
attribution list (shards.tools.attribution). It is written as CARD.md and as a small self-contained
CARD.html, with the size plot as card-sizes.png; `verify` reads only the manifest, the index and
shards/, so these files beside them change nothing it checks. Everything shown comes from the
manifest and the index, which may be hostile: strings go through plumbing.escape, and a manifest's
descriptive fields are shown whatever their types, never trusted to be what they should be.
CARD.md is written here; CARD.html is rendered from the Jinja2 templates in templates/ with
autoescape on, from plain data (card_links, card_tables) that the run report's dataset panel
renders with the same macros (card_macros.html.j2).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import pyarrow as pa
import pyarrow.compute as pc

from plumbing.atomic import atomic_write
from plumbing.escape import clip, md, md_link, safe_url
from shards.format.manifest import WORK_DIR
from shards.format.reader import Dataset
from shards.tools.attribution import (
    ATTRIBUTION_CSV,
    ATTRIBUTION_MD,
    missing_credit,
    write_attribution_csv,
    write_attribution_md,
)
from shards.tools.render import SUMMARY_LABELS, human_bytes
from shards.tools.stats import summarize

CARD_MD = "CARD.md"
CARD_HTML = "CARD.html"
SIZES_PNG = "card-sizes.png"
MAX_ENTRIES = 50  # rows of a table taken from a manifest, which may list any number
CONFIG_LIMIT = 20_000  # characters of the curation config shown


@dataclass(frozen=True)
class Licence:
    name: str | None  # None: no licence recorded
    url: str | None  # the URL most of its samples give
    samples: int
    other_urls: int = 0  # further distinct URLs given for the same licence name


@dataclass(frozen=True)
class Card:
    """What the card shows, read once from a dataset; strings still raw (escaped when rendered)."""

    name: Any
    manifest: dict[str, Any]
    stats: dict[str, Any]
    licences: list[Licence]
    hosts: list[tuple[str, int]]  # source pages' hosts, most samples first
    missing: dict[str, int]  # samples without a licence, an author, a source page
    work_files: list[str] = field(default_factory=list)  # curation records present under work/

    @property
    def curation(self) -> dict[str, Any]:
        value = self.manifest.get("curation")
        return value if isinstance(value, dict) else {}


def licences(index: pa.Table) -> list[Licence]:
    groups = index.group_by(["license", "license_url"]).aggregate([("key", "count")]).to_pylist()
    by_name: dict[str | None, Counter] = {}
    for g in groups:
        by_name.setdefault(g["license"], Counter())[g["license_url"]] += g["key_count"]
    result = []
    for name, urls in by_name.items():
        ranked = [u for u, _ in urls.most_common() if u]
        result.append(Licence(name, ranked[0] if ranked else None, sum(urls.values()), max(0, len(ranked) - 1)))
    return sorted(result, key=lambda lic: (-lic.samples, lic.name is None, str(lic.name)))


def hosts(index: pa.Table, limit: int = 20) -> list[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for entry in pc.value_counts(index["url"].drop_null()).to_pylist():
        try:
            host = urlsplit(entry["values"]).hostname
        except ValueError:  # e.g. a broken IPv6 netloc
            host = None
        counts[host or "(not a URL)"] += entry["counts"]
    return counts.most_common(limit)


def read_card(ds: Dataset) -> Card:
    index = ds.index
    work = [name for name in ("rejects.parquet", "dedup.parquet") if ds.loc.exists(f"{WORK_DIR}/{name}")]
    return Card(ds.manifest.get("name"), ds.manifest, summarize(index), licences(index), hosts(index),
                missing_credit(index), work)


def _items(value: Any) -> list[tuple[Any, Any]]:
    return list(value.items())[:MAX_ENTRIES] if isinstance(value, dict) else []


def _number(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return clip(value, 100)


def _summary(name: Any, value: Any) -> str:
    """A dedup counter as `anyres-shards info` shows it: lists joined, pixel counts in MP."""
    if isinstance(value, list):
        return ", ".join(map(str, value[:MAX_ENTRIES]))
    if str(name).startswith("pixels") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value / 1e6:,.1f} MP"
    return _number(value)


def _source_entry(entry: Any) -> str:
    """A curation source (a folder, a URL list, a Flickr query) on one line, still raw."""
    if isinstance(entry, dict):
        return ", ".join(f"{k}: {json.dumps(v, default=str)}" for k, v in list(entry.items())[:12])
    return json.dumps(entry, default=str)


def _config_text(card: Card) -> str | None:
    config = card.curation.get("config")
    if config in (None, {}):
        return None
    text = json.dumps(config, indent=2, ensure_ascii=True, default=str)  # ASCII: no control survives
    return text if len(text) <= CONFIG_LIMIT else text[:CONFIG_LIMIT] + "\n... (cut)"


def sections(card: Card) -> list[tuple[str, list[tuple[str, ...]], list[list[str]]]]:
    """The card's tables as (title, header, rows), cells raw: one source for Markdown and HTML.
    A cell is plain text, or a (text, url) link."""
    m, s = card.manifest, card.stats
    overview = [["samples", _number(s["num_samples"])], ["shards", _number(m.get("num_shards"))],
                ["bytes", f"{human_bytes(m['total_bytes'])} in shards, {human_bytes(s['image_bytes'])} of images"],
                ["created", m.get("created")], ["format", f"{m.get('format')} v{m.get('version')}"],
                ["root hash", m.get("root_hash") or "not recorded (anyres-shards verify computes it)"]]
    total = max(1, s["num_samples"])
    lic = [[(lic.name or "no licence recorded", lic.url), _number(lic.samples), f"{lic.samples / total:.0%}",
            f"{lic.other_urls} other URL(s) also given" if lic.other_urls else ""] for lic in card.licences[:MAX_ENTRIES]]
    if len(card.licences) > MAX_ENTRIES:
        rest = card.licences[MAX_ENTRIES:]
        lic.append([f"{len(rest):,} more licence names", _number(sum(x.samples for x in rest)), "", ""])
    sources = [[name, _number(n)] for name, n in _items(s["sources"])]
    sources += [[f"host {host}", _number(n)] for host, n in card.hosts]
    recorded = [[_source_entry(e)] for e in (card.curation.get("sources") or [])[:MAX_ENTRIES]] \
        if isinstance(card.curation.get("sources"), list) else []
    counts = [[name, _number(v)] for name, v in _items(card.curation.get("counts"))]
    rejects = [[name, _number(v)] for name, v in _items(card.curation.get("rejects"))] or [["none", "0"]]
    dedup = [[SUMMARY_LABELS.get(str(k), k), _summary(k, v)] for k, v in _items(card.curation.get("dedup"))]
    dedup.append(["duplicates merged into kept samples (index)", _number(s["duplicates_merged"])])
    missing = [[part, _number(n)] for part, n in card.missing.items()]
    sides = [[p, _number(v)] for p, v in s["min_side_percentiles"].items()]
    return [
        ("Overview", ("", ""), overview),
        ("Shorter side (px), percentiles", ("percentile", "px"), sides),
        ("Licences", ("licence", "samples", "share", "note"), lic),
        ("Samples without credit", ("missing", "samples"), missing),
        ("Sources", ("source", "samples"), sources),
        ("Sources in the curation record", ("source",), recorded),
        ("Curation counts", ("step", "items"), counts),
        ("Rejects by reason", ("reason", "items"), rejects),
        ("Deduplication", ("", ""), dedup),
    ]


def _md_cell(cell: Any) -> str:
    return md_link(*cell) if isinstance(cell, tuple) else md(cell)


def card_markdown(card: Card) -> str:
    tool = card.curation.get("tool")
    lines = [f"# Dataset card: {md(card.name)}", "",
             f"An anyres dataset: images stored untouched at their native resolution in WebDataset shards"
             f"{', curated by ' + md(tool) if tool else ''}. Attribution for every sample: "
             f"[{ATTRIBUTION_MD}]({ATTRIBUTION_MD}) ([CSV]({ATTRIBUTION_CSV})).", "",
             f"![width x height, shorter side, megapixels]({SIZES_PNG})", ""]
    for title, header, rows in sections(card):
        if not rows:
            continue
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        lines.append("")
    if card.work_files:
        lines += [f"Curation records kept with the dataset: {', '.join(f'{WORK_DIR}/{n}' for n in card.work_files)}.", ""]
    config = _config_text(card)
    if config:
        # Indented ASCII JSON: no line of it is only backticks, so no line can close the fence.
        lines += ["## Curation config", "", "```json", config, "```", ""]
    return "\n".join(lines)


def _html_cell(cell: Any) -> dict[str, str | None]:
    """A cell as the card's templates take it: clipped text, and a link target only where
    plumbing.escape.safe_url passes the URL (quoted there); the templates escape both."""
    if isinstance(cell, tuple):
        text, url = cell
        return {"text": clip(text if text not in (None, "") else url), "href": safe_url(url)}
    return {"text": clip(cell), "href": None}


def card_links(prefix: str = "") -> dict[str, str]:
    """Where the card's files are, for card_macros.links; `prefix` is their folder relative to the page."""
    return {"attribution": prefix + ATTRIBUTION_MD, "attribution_name": ATTRIBUTION_MD,
            "csv": prefix + ATTRIBUTION_CSV, "card": prefix + CARD_MD, "card_name": CARD_MD}


def card_tables(card: Card, only: tuple[str, ...] | None = None, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The card's tables for card_macros.tables, all of them (and the config) or those titled in `only`."""
    tables = [{"title": title, "header": list(header), "rows": [[_html_cell(c) for c in row] for row in rows]}
              for title, header, rows in sections(card) if rows and (only is None or title in only)
              and title not in skip]
    return {"tables": tables, "config": _config_text(card) if only is None else None}


TEMPLATES = Path(__file__).with_name("templates")  # package data (pyproject.toml), beside this module


def environment() -> jinja2.Environment:
    """Autoescape on, as for the run report (training.run.run_report.environment, which also loads
    these templates); a value the Python side forgot to pass fails the page rather than showing as nothing."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def card_page(card: Card) -> str:
    return environment().get_template("card.html.j2").render(
        name=clip(card.name), sizes=SIZES_PNG, links=card_links(), tables=card_tables(card))


def write_card(ds: Dataset, out: str | Path, card: Card | None = None) -> list[Path]:
    """CARD.md, CARD.html, card-sizes.png, ATTRIBUTION.md and ATTRIBUTION.csv, in `out`."""
    from shards.tools.plots import plot_dataset

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    card = card or read_card(ds)
    # The name is dataset text: escaped, and its "$" kept from starting matplotlib's mathtext.
    plot_dataset(ds.index, out / SIZES_PNG, title=clip(card.name, 200).replace("$", r"\$"))
    write_attribution_md(ds.index, out / ATTRIBUTION_MD, card.name)
    write_attribution_csv(ds.index, out / ATTRIBUTION_CSV)
    atomic_write(out / CARD_HTML, card_page(card).encode())
    atomic_write(out / CARD_MD, card_markdown(card).encode())
    return [out / CARD_MD, out / CARD_HTML, out / SIZES_PNG, out / ATTRIBUTION_MD, out / ATTRIBUTION_CSV]
