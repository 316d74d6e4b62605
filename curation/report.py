"""What a person sees: a live bar while a run goes (items done, kept, rejects, throughput),
then a summary table; and the `status` report."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .pipeline import Events


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class LiveEvents(Events):
    """A rich progress bar on stderr, started on the first event so that a call failing before
    any work leaves its one error line alone."""

    def __init__(self, console: Console):
        self.console = console
        self.counts: Counter = Counter()
        self.started = time.monotonic()
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=True,
        )
        self.task = None

    def begin(self, total: int | None) -> None:
        self.started = time.monotonic()
        self.progress.start()
        self.task = self.progress.add_task("fetch", total=total, info="")

    def advance(self, delta: dict[str, int]) -> None:
        self.counts.update(delta)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        info = (f"kept [green]{self.counts['kept']:,}[/] rejected [red]{self.counts['rejected']:,}[/] "
                f"{self.counts['items'] / elapsed:.1f} items/s")
        self.progress.update(self.task, advance=delta.get("items", 0), info=info)

    def phase(self, name: str, total: int | None = None) -> Callable[[int], None]:
        task = self.progress.add_task(name, total=total, info="copying kept samples into the final shards")
        return lambda n: self.progress.advance(task, n)

    def end(self) -> None:
        self.progress.stop()


def summary_table(manifest: dict[str, Any]) -> Table:
    curation = manifest.get("curation") or {}
    counts = curation.get("counts") or {}
    stats = manifest.get("stats") or {}
    table = Table(title=f"anyres-curate: {manifest.get('name')}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("input items", f"{counts.get('items', 0):,}")
    table.add_row("[green]kept", f"[green]{manifest['num_samples']:,}")
    table.add_row("[red]rejected", f"[red]{counts.get('rejected', 0):,}")
    for reason, n in (curation.get("rejects") or {}).items():
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("duplicates merged", f"{stats.get('duplicates_merged', 0):,}")
    if (dedup := curation.get("dedup") or {}).get("unsigned"):
        # samples of a dataset made before signatures were stored: the crop stage cannot see them
        table.add_row("[yellow]no crop signature", f"[yellow]{dedup['unsigned']:,} (matched by pHash only)")
    table.add_row("bytes", f"{human_bytes(stats.get('image_bytes', 0))} in {manifest['num_shards']} shards")
    side = stats.get("min_side_percentiles") or {}
    mp = stats.get("megapixel_percentiles") or {}
    if side:
        table.add_row("shorter side", f"{side['p0']:,} .. {side['p50']:,} .. {side['p100']:,} px (min, median, max)")
        table.add_row("megapixels", f"{mp['p0']} .. {mp['p50']} .. {mp['p100']}")
    timing = manifest.get("timing")
    if timing:
        rate = counts.get("items", 0) / max(timing["total_s"], 1e-6)
        table.add_row("time", f"{timing['total_s']:.1f} s ({rate:.1f} items/s)")
    return table


def status_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"anyres-curate status: {report['dataset']}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("state", report["state"])
    total = report["slices_total"]
    table.add_row("slices done", f"{report['slices_done']:,} of {total:,}" if total is not None
                  else f"{report['slices_done']:,} (input not fully read yet)")
    items_total = report["items_total"]
    table.add_row("items done", f"{report['items_done']:,}" + (f" of {items_total:,}" if items_total else ""))
    if report["state"] == "complete":
        table.add_row("samples", f"{report['num_samples']:,} in {report['num_shards']} shards, "
                      f"{human_bytes(report['total_bytes'])}")
    else:
        table.add_row("kept so far (before dedup)", f"{report['kept_staged']:,}")
        table.add_row("rejected so far", f"{report['rejected_staged']:,}")
    for reason, n in report["rejects"].items():
        table.add_row(f"  {reason}", f"{n:,}")
    for journal in report.get("flickr", []):  # Flickr discovery, which runs ahead of the slices
        progress = (f"{journal['windows_done']:,} windows done, {journal['windows_left']:,} to go"
                    if journal["lines_done"] is None else f"{journal['lines_done']:,} list lines read")
        table.add_row("Flickr discovery", f"{'done' if journal['done'] else 'running'}: "
                      f"{journal['photos']:,} photos, {progress}")
    return table
