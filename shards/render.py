"""How `anyres-shards` shows a dataset to people: rich tables, sizes in human units."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def info_report(manifest: dict[str, Any], stats: dict[str, Any]) -> Group:
    parts = [_overview(manifest, stats), _resolution(stats), _counts_table(stats)]
    curation = manifest.get("curation") or {}
    if curation:
        parts.append(_curation(curation))
    if manifest.get("derived_from"):
        d = manifest["derived_from"]
        parts.append(f"[dim]subset of {d.get('name')} ({d.get('num_samples')} samples) at {d.get('dataset')}, "
                     f"filter {d.get('filter')}[/dim]")
    return Group(*parts)


def _overview(manifest: dict[str, Any], stats: dict[str, Any]) -> Table:
    table = Table(title=f"dataset {manifest.get('name')}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("samples", f"{stats['num_samples']:,}")
    table.add_row("shards", f"{manifest['num_shards']:,} ({human_bytes(manifest['total_bytes'])} in all)")
    table.add_row("image bytes", human_bytes(stats["image_bytes"]))
    table.add_row("created", str(manifest.get("created")))
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
            table.add_row(str(name), f"{count:,}")
        tables.append(table)
    outer.add_row(*tables[:2])
    outer.add_row(*tables[2:])
    return outer


def _curation(curation: dict[str, Any]) -> Table:
    outer = Table.grid(padding=(0, 4))
    counts = Table(title=f"curation ({curation.get('tool', 'unknown tool')})", title_justify="left")
    counts.add_column("step")
    counts.add_column("items", justify="right")
    for name, value in (curation.get("counts") or {}).items():
        counts.add_row(str(name), f"{value:,}" if isinstance(value, int) else str(value))
    rejects = Table(title="rejects by reason", title_justify="left")
    rejects.add_column("reason")
    rejects.add_column("items", justify="right")
    for reason, value in (curation.get("rejects") or {"none": 0}).items():
        rejects.add_row(str(reason), f"{value:,}")
    outer.add_row(counts, rejects)
    return Group(outer, _dedup(curation["dedup"])) if curation.get("dedup") else outer


# The summary first, in this order; per-reason counts after it.
DEDUP_SUMMARY = {"clusters": "clusters (kept samples that absorbed copies)", "removed": "duplicates removed",
                 "pixels_recovered": "pixels recovered (largest copy kept)"}


def _dedup(dedup: dict[str, Any]) -> Table:
    table = Table(title="deduplication", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, label in DEDUP_SUMMARY.items():
        if name in dedup:
            value = dedup[name]
            shown = f"{value / 1e6:,.1f} MP" if name == "pixels_recovered" else f"{value:,}"
            table.add_row(label, shown)
    for name, value in dedup.items():
        if name not in DEDUP_SUMMARY:
            shown = ", ".join(map(str, value)) if isinstance(value, list) else \
                f"{value:,}" if isinstance(value, int) else str(value)
            table.add_row(str(name), shown)
    return table


def print_report(renderable: Any) -> None:
    Console().print(renderable)
