"""Where results go: appended to the run folder's metrics.jsonl, shown as a table, and the
pFID-per-scale plot (the spectra's: spectrum_plot.py). Every row names its feature network and says whether it is comparable with
published numbers, and why not when it is not."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from plumbing.atomic import atomic_write, atomic_write_png
from plumbing.console import printable

METRICS_FILE = "metrics.jsonl"
BINS_PLOT = "pfid-bins.png"


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite-and-rename rather than append in place: a kill leaves the old file or the new one."""
    old = path.read_bytes() if path.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    new = "".join(json.dumps(r, allow_nan=True, default=str) + "\n" for r in rows).encode()
    atomic_write(path, old + new)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def table(rows: list[dict[str, Any]], best: str | None = None):
    """One row per result; the feature network in the title, and why a number is not comparable
    with published ones once per reason, below."""
    from rich.table import Table

    networks = ", ".join(dict.fromkeys(r["network"] for r in rows))
    notes = list(dict.fromkeys(r["note"] for r in rows if not r["comparable"]))
    title = f"anyres-eval, features {networks}" + (f"; best {best}" if best else "")
    caption = "\n".join(printable(f"({i + 1}) not comparable with published numbers: {n}") for i, n in enumerate(notes))
    t = Table(title=printable(title), caption=caption or None, caption_justify="left")
    for column in ("snapshot", "kimg", "metric", "value", "± / real", "n", "where", "comparable"):
        t.add_column(column, overflow="fold")
    for r in rows:
        spread = (f"± {_fmt(r['std'])}" if "std" in r else
                  f"real {_fmt(r['real'])} ({_fmt(r.get('ratio'))}x)" if "real" in r else "")
        where = (f"S={r['size']}" if "size" in r else
                 f"p={r.get('p')} S {_fmt(r.get('s_min'))}-{_fmt(r.get('s_max')) or 'native'}")
        metric = r["metric"] + (f" S/R {r['bin']}" if "bin" in r else "")
        comparable = "yes" if r["comparable"] else f"no ({notes.index(r['note']) + 1})"
        t.add_row(*(printable(x) for x in (Path(str(r.get("snapshot", ""))).name.removeprefix("network-snapshot-"),
                                            _fmt(r.get("kimg")), metric, _fmt(r["value"]), spread, str(r["n"]), where,
                                            comparable)))
    return t


def best_snapshot(rows: list[dict[str, Any]], metric: str) -> str | None:
    """The snapshot with the lowest value of `metric` (FID and KID: lower is better)."""
    scored = [r for r in rows if r["metric"] == metric and "bin" not in r and math.isfinite(r["value"])]
    return min(scored, key=lambda r: r["value"])["snapshot"] if scored else None


def plot_bins(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """pFID against the octave of S/R, one line per snapshot."""
    binned = [r for r in rows if r["metric"] == "pfid-bins"]
    if not binned:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted({r["bin"] for r in binned}, key=lambda b: float(b[1:].split(",")[0]))
    fig, ax = plt.subplots(figsize=(6, 4))
    for snapshot in dict.fromkeys(r["snapshot"] for r in binned):
        mine = {r["bin"]: r["value"] for r in binned if r["snapshot"] == snapshot}
        xs = [i for i, b in enumerate(labels) if b in mine]
        ax.plot(xs, [mine[labels[i]] for i in xs], marker="o", label=Path(snapshot).name)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("S / R")
    ax.set_ylabel("pFID")
    ax.set_title(f"pFID per scale ({binned[0]['network']})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write_png(path, fig)
    plt.close(fig)
    return path
