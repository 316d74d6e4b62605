"""The spectra of a snapshot, drawn: one panel per octave of S/R, power per frequency band for real
patches, rendered ones and the canvas at R upsampled (Lanczos-3), with the band where the
upsampled one holds only its interpolator's imaging shaded.

Rows come from metrics.jsonl, a file a user may hand over: a row whose fields are not what
`metrics.spectrum_rows` writes is left out, never trusted.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from plumbing.atomic import atomic_write_png
from plumbing.escape import clip

SPECTRUM_PLOT = "spectrum.png"
MAX_BANDS = 32
MAX_PANELS = 8


def _numbers(value: Any, count: int | None = None) -> list[float] | None:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_BANDS or (count is not None and len(value) != count):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in value):
        return None
    return [float(v) for v in value]


def spectrum_row(row: Any) -> dict | None:
    """The plottable part of a spectrum row, or None: band centres, real and generated power."""
    if not isinstance(row, dict) or not str(row.get("metric", "")).startswith("spectrum-"):
        return None
    bands = row.get("bands")
    if not isinstance(bands, list) or not bands or len(bands) > MAX_BANDS:
        return None
    edges = [_numbers(b, 2) for b in bands]
    if any(e is None or not 0 < e[0] < e[1] for e in edges):
        return None
    real, fake = _numbers(row.get("band_real"), len(bands)), _numbers(row.get("band_fake"), len(bands))
    if real is None or fake is None:
        return None
    imaging = row.get("imaging_from")
    imaging = float(imaging) if isinstance(imaging, (int, float)) and math.isfinite(imaging) and imaging > 0 else None
    return {"metric": row["metric"], "snapshot": str(row.get("snapshot", "")), "bin": str(row.get("bin", "")),
            "centres": [math.sqrt(lo * hi) for lo, hi in edges], "real": real, "fake": fake, "imaging_from": imaging}


def latest_spectra(rows: list[Any]) -> list[dict]:
    """The valid spectrum rows of the last snapshot that has any."""
    valid = [r for r in map(spectrum_row, rows) if r is not None]
    if not valid:
        return []
    last = valid[-1]["snapshot"]
    return [r for r in valid if r["snapshot"] == last]


def _bin_start(label: str) -> float:
    try:
        return float(label[1:].split(",")[0])
    except ValueError:
        return math.inf


def plot_spectra(rows: list[Any], path: Path) -> Path | None:
    """The last snapshot's spectra, one panel per scale bin; None when there are none."""
    spectra = latest_spectra(rows)
    if not spectra:
        return None
    bins = sorted(dict.fromkeys(r["bin"] for r in spectra), key=_bin_start)[:MAX_PANELS]
    fig = Figure(figsize=(4.2 * len(bins), 3.6), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(bins), squeeze=False)[0]
    for ax, label in zip(axes, bins):
        mine = [r for r in spectra if r["bin"] == label]
        real = mine[0]
        floor = 1e-12  # a log axis needs positive values; empty bands sit on the floor
        ax.plot(real["centres"], [max(v, floor) for v in real["real"]], "k-o", label="real", ms=4)
        for r in mine:
            up = r["metric"].endswith("-up")
            ax.plot(r["centres"], [max(v, floor) for v in r["fake"]], "--s" if up else "-^", ms=4,
                    color="tab:orange" if up else "tab:blue",
                    label="R image upsampled (Lanczos-3)" if up else "rendered")
            if up and r["imaging_from"] is not None:
                ax.axvspan(r["imaging_from"], 0.5, color="tab:orange", alpha=0.12, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("frequency (cycles / pixel)")
        ax.set_title(f"S / R in {clip(label, 20)}".replace("$", r"\$"), fontsize=9)
    axes[0].set_ylabel("power per octave (grey levels²)")
    axes[0].legend(fontsize=7)
    fig.suptitle(clip(Path(spectra[0]["snapshot"]).name, 80).replace("$", r"\$")
                 + ": shaded, the upsampled image's imaging band", fontsize=8)
    fig.tight_layout()
    atomic_write_png(path, fig)
    return path
