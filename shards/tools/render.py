"""How `anyres-shards` shows a dataset to people: rich tables, sizes in human units.

Everything shown from a manifest or an index is dataset text, which may be hostile: it goes in
as `rich.text.Text` (never parsed as markup, so `[link=...]` or `[/]` stay literal), with its
control characters escaped, and numbers are formatted only when they are numbers.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from plumbing.console import printable


def text(value: Any, style: str = "") -> Text:
    return Text(printable(value)[:1000], style=style)


def number(value: Any) -> Text:
    return text(f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def info_report(manifest: dict[str, Any], stats: dict[str, Any]) -> Group:
    parts = [_overview(manifest, stats), _resolution(stats), _counts_table(stats)]
    curation = manifest.get("curation") or {}
    if isinstance(curation, dict) and curation:
        parts.append(_curation(curation))
    d = manifest.get("derived_from")
    if isinstance(d, dict) and d:
        parts.append(text(f"subset of {d.get('name')} ({d.get('num_samples')} samples) at {d.get('dataset')}, "
                          f"filter {d.get('filter')}", style="dim"))
    return Group(*parts)


def _overview(manifest: dict[str, Any], stats: dict[str, Any]) -> Table:
    table = Table(title=text(f"dataset {manifest.get('name')}"), show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("samples", f"{stats['num_samples']:,}")
    table.add_row("shards", f"{manifest['num_shards']:,} ({human_bytes(manifest['total_bytes'])} in all)")
    table.add_row("image bytes", human_bytes(stats["image_bytes"]))
    table.add_row("created", text(manifest.get("created")))
    table.add_row("format", f"{manifest['format']} v{manifest['version']}")
    return table


def _resolution(stats: dict[str, Any]) -> Group:
    table = Table(title="resolution", title_justify="left")
    table.add_column("")
    for name in stats["min_side_percentiles"]:
        table.add_column(name, justify="right")
    table.add_row("min side (px)", *(f"{v:,}" for v in stats["min_side_percentiles"].values()))
    table.add_row("megapixels", *(f"{v:.2f}" for v in stats["megapixel_percentiles"].values()))
    buckets = Table(title="samples by min side", title_justify="left")
    for label in stats["min_side_buckets"]:
        buckets.add_column(label, justify="right")
    buckets.add_row(*(f"{v:,}" for v in stats["min_side_buckets"].values()))
    return Group(table, buckets)


def _counts_table(stats: dict[str, Any]) -> Table:
    outer = Table.grid(padding=(0, 2))
    tables = []
    for label in ("formats", "modes", "sources", "licenses"):
        table = Table(title=label, title_justify="left")
        table.add_column(label[:-1])
        table.add_column("samples", justify="right")
        for name, count in list(stats[label].items())[:10]:
            table.add_row(text(name), number(count))
        tables.append(table)
    outer.add_row(*tables[:2])
    outer.add_row(*tables[2:])
    return outer


def _curation(curation: dict[str, Any]) -> Table:
    outer = Table.grid(padding=(0, 4))
    counts = Table(title=text(f"curation ({curation.get('tool', 'unknown tool')})"), title_justify="left")
    counts.add_column("step")
    counts.add_column("items", justify="right")
    for name, value in _items(curation.get("counts")):
        counts.add_row(text(name), number(value))
    rejects = Table(title="rejects by reason", title_justify="left")
    rejects.add_column("reason")
    rejects.add_column("items", justify="right")
    for reason, value in _items(curation.get("rejects") or {"none": 0}):
        rejects.add_row(text(reason), number(value))
    outer.add_row(counts, rejects)
    dedup = curation.get("dedup")
    return Group(outer, _dedup(dedup)) if isinstance(dedup, dict) and dedup else outer


def _items(value: Any) -> list[tuple[Any, Any]]:
    return list(value.items()) if isinstance(value, dict) else []


# Wording for counters a summary often holds, shown first in this order; every other entry,
# whatever its producer put there, follows under its own name. Counts of pixels read in MP.
SUMMARY_LABELS = {"clusters": "clusters (kept samples that absorbed copies)", "removed": "duplicates removed",
                  "pixels_recovered": "pixels recovered (largest copy kept)"}


def _dedup(dedup: dict[str, Any]) -> Table:
    table = Table(title="deduplication", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    known = [name for name in SUMMARY_LABELS if name in dedup]
    for name in [*known, *(n for n in dedup if n not in SUMMARY_LABELS)]:
        label = SUMMARY_LABELS[name] if name in SUMMARY_LABELS else text(name)
        table.add_row(label, _summary_value(name, dedup[name]))
    return table


def _summary_value(name: Any, value: Any) -> Text:
    if isinstance(value, list):
        return text(", ".join(map(str, value)))
    if str(name).startswith("pixels") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return text(f"{value / 1e6:,.1f} MP")
    return number(value)


def root_line(manifest: dict[str, Any]) -> str:
    """On a line of its own, never wrapped: the value a publisher announces and a user pins."""
    root = manifest.get("root_hash")
    return f"root hash {root}" if root else \
        "root hash not recorded (written before datasets were pinned): `anyres-shards verify` computes it"
