"""`anyres-train report RUN`: one self-contained HTML page per run folder, RUN/report.html.

Plain files that open offline: no server, no script, no CDN. The page links the images the run
folder already holds by relative path (curves, sample grids, generated images and zooms, the
pFID plot) and writes what it adds into RUN/report/ (the dataset's card, size plot and contact
sheet, curves drawn from stats.jsonl when curves.png is missing, the spectra). This module reads the
run and computes what each panel shows (rows, links, captions); the Jinja2 templates in templates/
hold the markup and render with autoescape on, so every string read from a file (config values,
metric notes, file names) is shown as text, clipped to one bounded line (plumbing.escape.clip). The
dataset card's links and tables come as plain data from shards.tools.card and are drawn by its own
macros (shards/tools/templates/card_macros.html.j2), as on its CARD.html. A part that is missing
(no dataset, no metrics yet) says so, and how to make it, rather than failing the page.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from plumbing.atomic import atomic_write, atomic_write_png
from plumbing.errors import UserError
from plumbing.escape import clip

from ..errors import TrainingError
from ..eval.spectrum_plot import SPECTRUM_PLOT, latest_spectra, plot_spectra
from . import stats_log

REPORT_HTML = "report.html"
ASSETS = "report"  # RUN/report/: what the page adds to the run folder
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
OUTPUT_FOLDERS = ("generated", "zoom")  # RUN/generated*/, RUN/zoom*/: where anyres-generate's output is looked for
MAX_IMAGES = 24  # generated images shown; the rest are counted
STRIP = 12  # earlier sample grids shown small


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path) -> list[dict]:
    """The object lines of a JSON-lines file; a torn or foreign line is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def link(run: Path, path: Path) -> str:
    """A file inside RUN as a relative URL: quoted here, HTML-escaped by the template."""
    return quote(path.relative_to(run).as_posix())


def figure(run: Path, path: Path, alt: str, css: str = "", caption: str = "") -> dict:
    """An image the templates link and show (macros.html.j2's img and figure)."""
    return {"src": link(run, path), "alt": alt, "css": css, "caption": caption}


def fmt(value: Any) -> str:
    """A table cell's text (the templates' `cell` filter)."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else clip(value, 200)


def table(header: list[str], rows: list[list[Any]]) -> dict:
    """Raw values: the template clips and escapes each cell."""
    return {"header": header, "rows": rows}


# The dataset panel.


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def dataset_location(run: Path, config: dict, data: str | None) -> str | None:
    """--data, else the config's loader.data. A relative path is tried from here, then from
    where training ran: RUN's path less the config's own relative `out`."""
    if data:
        return data
    value = as_dict(config.get("loader")).get("data")
    if not isinstance(value, str) or not value:
        return None
    if "://" in value or Path(value).is_absolute() or Path(value).exists():
        return value
    out = config.get("out")
    if not isinstance(out, str) or not out or Path(out).is_absolute():
        return value
    tail, parts = Path(os.path.normpath(out)).parts, run.resolve().parts
    if ".." not in tail and len(tail) < len(parts) and parts[-len(tail):] == tail:
        candidate = Path(*parts[:-len(tail)]) / value
        if candidate.exists():
            return str(candidate)
    return value


def dataset_panel(run: Path, where: str | None, opened=None) -> dict:
    """`opened`: the run's own shards.Dataset, when it has one, rather than reading the index again."""
    from shards.format.reader import Dataset
    from shards.tools.card import SIZES_PNG, card_links, card_tables, read_card, write_card
    from shards.tools.plots import contact_sheet

    panel = {"where": where, "error": None, "count": None, "card": None, "sizes": None, "grid": None}
    if where is None:
        return panel
    folder = run / ASSETS / "dataset"
    try:
        ds = opened if opened is not None else Dataset(where)
        card = read_card(ds)
        write_card(ds, folder, card)
        contact_sheet(ds, folder / "grid.png", n=min(24, len(ds)) or 1, seed=0, thumb=160)
    except (UserError, OSError) as exc:
        return panel | {"error": " ".join(str(exc).split())}
    shown = ("Licences", "Samples without credit")
    # Plain data for the card's own macros: the same tables and links as its CARD.html.
    parts = {"links": card_links(f"{ASSETS}/dataset/"), "shown": card_tables(card, only=shown),
             "rest": card_tables(card, skip=shown)}
    return panel | {"count": f"{len(ds):,}", "card": parts,
                    "sizes": link(run, folder / SIZES_PNG), "grid": link(run, folder / "grid.png")}


# Training: config, curves, sample grids, loader counters.


def flatten(value: Any, prefix: str = "") -> list[list[Any]]:
    if isinstance(value, dict) and value:
        return [row for k, v in value.items() for row in flatten(v, f"{prefix}{k}.")]
    return [[prefix.rstrip("."), json.dumps(value, default=str)]]


def config_panel(config: dict) -> list[tuple[str, list[list[Any]]]]:
    """config.json as small tables side by side: the run's own settings, then one per group
    (none when there is no config)."""
    groups = {"run": [[k, json.dumps(v, default=str)] for k, v in config.items() if not isinstance(v, dict)]}
    groups.update({k: flatten(v) for k, v in config.items() if isinstance(v, dict)})
    return [(name, rows) for name, rows in groups.items() if rows]


def curves_panel(run: Path, records: list[dict]) -> dict | None:
    if (run / "curves.png").exists():
        return figure(run, run / "curves.png", "training curves")
    if records:
        path = run / ASSETS / "curves.png"
        stats_log.plot_curves(records, path)
        return figure(run, path, "training curves, drawn from stats.jsonl")
    return None


def samples_panel(run: Path) -> dict | None:
    grids = sorted(run.glob("samples-*.png"))
    if not grids:
        return None
    latest, earlier = grids[-1], grids[:-1][-STRIP:]
    return {"latest": figure(run, latest, latest.name),
            "earlier": [figure(run, p, p.name, caption=p.stem.removeprefix("samples-")) for p in earlier]}


def loader_panel(records: list[dict]) -> list[list[Any]]:
    counts = records[-1].get("loader") if records else None
    return [[k, v] for k, v in counts.items()] if isinstance(counts, dict) else []


# Generation and metrics.


def output_files(run: Path) -> tuple[list[Path], list[Path]]:
    """(images, zooms) under RUN/generated*/ and RUN/zoom*/, zoom frames left out."""
    found: list[Path] = []
    for folder in sorted(p for p in run.iterdir() if p.is_dir() and p.name.startswith(OUTPUT_FOLDERS)):
        found += sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                        and not p.is_symlink() and not p.name.startswith("frame-"))
    zooms = [p for p in found if p.suffix.lower() == ".webp" and p.stem.startswith("zoom-")]
    return [p for p in found if p not in zooms], zooms


def small(path: Path) -> bool:
    """An image under 256 px a side, shown enlarged with its pixels kept sharp."""
    from PIL import Image

    try:
        with Image.open(path) as image:  # reads the header only
            return max(image.size) < 256
    except Exception:  # not an image Pillow knows: the browser will say so
        return False


def caption(path: Path) -> str:
    side = read_json(path.with_suffix(".json"))
    if not isinstance(side, dict):
        return path.name
    if "frames" in side:
        return f"{path.name}: seed {fmt(side.get('seed'))}, {len(side['frames'])} frames of {fmt(side.get('frame_size'))} px"
    return (f"{path.name}: seed {fmt(side.get('seed'))}, {fmt(side.get('width'))} x {fmt(side.get('height'))}, "
            f"S = {fmt(side.get('scale'))}")


def outputs_panel(run: Path, config: dict) -> list[dict]:
    images, zooms = output_files(run)
    r = as_dict(config.get("g")).get("resolution") or 256
    return [{"title": title, "how": how, "more": max(0, len(files) - MAX_IMAGES),
             "figures": [figure(run, p, p.name, "small" if small(p) else "", caption(p)) for p in files[:MAX_IMAGES]]}
            for title, files, how in (
                ("Generated images", images,
                 f"anyres-generate {run}/checkpoint.pt --out {run}/generated --seeds 0-3 --size {4 * r}"),
                ("Zooms", zooms, f"anyres-generate {run}/checkpoint.pt --out {run}/zoom --zoom --seeds 0"))]


def bin_order(label: str) -> tuple[float, str]:
    """'[2,4)' sorts by its lower end, 2."""
    try:
        return float(label[1:].split(",")[0]), label
    except ValueError:
        return math.inf, label


def plot_bins(rows: list[dict], path: Path) -> None:
    """pFID against the octave of S/R, one line per snapshot (as anyres-eval's pfid-bins.png)."""
    labels = sorted({str(r["bin"]) for r in rows}, key=bin_order)
    fig = Figure(figsize=(6, 4), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for snapshot in dict.fromkeys(str(r.get("snapshot")) for r in rows):
        mine = {str(r["bin"]): r.get("value") for r in rows if str(r.get("snapshot")) == snapshot}
        xs = [i for i, b in enumerate(labels) if isinstance(mine.get(b), (int, float))]
        ax.plot(xs, [mine[labels[i]] for i in xs], marker="o", label=clip(Path(snapshot).name, 60).replace("$", r"\$"))
    ax.set_xticks(range(len(labels)), [clip(b, 20).replace("$", r"\$") for b in labels])
    ax.set_xlabel("S / R")
    ax.set_ylabel("pFID")
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write_png(path, fig)


def metrics_panel(run: Path, config: dict, where: str | None) -> dict:
    rows = [r for r in read_jsonl(run / "metrics.jsonl") if "metric" in r]
    panel = {"how": None, "plain": None, "bins": None, "spectrum": None, "notes": []}
    if not rows:
        r = as_dict(config.get("g")).get("resolution") or 256
        return panel | {"how": f"anyres-eval {run} --data {where or 'DATASET'} --metrics kid,fid-up --size {4 * r}"}
    plain = [r for r in rows if "bin" not in r]
    binned = [r for r in rows if "bin" in r and r["metric"] == "pfid-bins"]
    notes = list(dict.fromkeys(str(r.get("note")) for r in rows if not r.get("comparable")))
    panel["notes"] = notes
    if plain:
        panel["plain"] = table(
            ["snapshot", "kimg", "metric", "value", "± / real", "n", "where", "network", "comparable"],
            [[Path(str(r.get("snapshot", ""))).name, r.get("kimg"), r["metric"], r.get("value"),
              f"± {fmt(r['std'])}" if "std" in r else f"real {fmt(r['real'])}" if "real" in r else "",
              r.get("n"), f"S={fmt(r['size'])}" if "size" in r else f"p={fmt(r.get('p'))} S {fmt(r.get('s_min'))}-"
              f"{fmt(r.get('s_max')) or 'native'}", r.get("network"),
              "yes" if r.get("comparable") else f"no ({notes.index(str(r.get('note'))) + 1})"] for r in plain])
    if binned:
        labels = sorted({str(r["bin"]) for r in binned}, key=bin_order)
        snapshots = list(dict.fromkeys(str(r.get("snapshot")) for r in binned))
        value = {(str(r.get("snapshot")), str(r["bin"])): r.get("value") for r in binned}
        plot = run / "pfid-bins.png"
        if not plot.exists():
            plot = run / ASSETS / "pfid-bins.png"
            plot_bins(binned, plot)
        panel["bins"] = table(["snapshot", *labels], [[Path(s).name, *(value.get((s, b)) for b in labels)]
                                                      for s in snapshots]) | {"plot": link(run, plot)}
    panel["spectrum"] = spectrum_part(run, rows)
    return panel


def spectrum_part(run: Path, rows: list[dict]) -> dict | None:
    """The last snapshot's power per frequency band against real patches', per scale, drawn."""
    spectra = latest_spectra(rows)
    if not spectra:
        return None
    plot = plot_spectra(rows, run / ASSETS / SPECTRUM_PLOT)
    edges = spectra[0]["centres"]
    header = ["metric", "S/R", *(f"{c:.3g} c/px" for c in edges)]
    ratios = [[r["metric"], r["bin"], *(f / q if q > 0 else math.nan for f, q in zip(r["fake"], r["real"]))]
              for r in spectra if len(r["centres"]) == len(edges)]
    return table(header, ratios) | {"plot": link(run, plot) if plot else None}


# The page.

SECTIONS = (("dataset", "Dataset"), ("config", "Config"), ("curves", "Training curves"), ("samples", "Sample grids"),
            ("outputs", "Generated images and zooms"), ("metrics", "Metrics"), ("loader", "Loader counters"))
TEMPLATES = Path(__file__).with_name("templates")  # package data (pyproject.toml), beside this module


def environment() -> jinja2.Environment:
    """Autoescape on for every template but the static stylesheet, whose `>` must stay a `>`; a
    value the Python side forgot to pass fails the page rather than showing as nothing. The
    dataset card's templates are found too, for its macros."""
    from shards.tools.card import TEMPLATES as CARD_TEMPLATES

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([TEMPLATES, CARD_TEMPLATES]),
        autoescape=jinja2.select_autoescape(enabled_extensions=("j2",), disabled_extensions=("css",), default=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(clip=clip, cell=fmt)
    return env


def build_page(run: Path, data: str | None = None, dataset=None) -> str:
    config = read_json(run / "config.json")
    config = config if isinstance(config, dict) else {}
    records = read_jsonl(run / "stats.jsonl")
    where = dataset.url if dataset is not None else dataset_location(run, config, data)
    last = records[-1] if records else {}
    summary = table(["stage", "preset", "kimg", "of", "s/kimg", "loss G", "loss D"],
                    [[config.get("stage"), config.get("preset"), last.get("kimg"), config.get("kimg"),
                      last.get("sec_per_kimg"), last.get("loss_G"), last.get("loss_D")]])
    panels = {
        "dataset": dataset_panel(run, where, dataset),
        "config": config_panel(config),
        "curves": curves_panel(run, records),
        "samples": samples_panel(run),
        "outputs": outputs_panel(run, config),
        "metrics": metrics_panel(run, config, where),
        "loader": loader_panel(records),
    }
    return environment().get_template("report.html.j2").render(
        name=run.resolve().name, run=str(run), written=time.strftime("%Y-%m-%d %H:%M:%S"), summary=summary,
        sections=SECTIONS, panels=panels)


def write_report(run: str | Path, data: str | None = None, dataset=None) -> Path:
    """RUN/report.html. The dataset panel shows `dataset` (an opened shards.Dataset), else `data`,
    else the run config's loader.data."""
    run = Path(run)
    if not run.is_dir():
        raise TrainingError(f"no such run folder: {run}")
    if not (run / "config.json").exists() and not (run / "stats.jsonl").exists():
        raise TrainingError(f"not a run folder (no config.json or stats.jsonl): {run}")
    (run / ASSETS).mkdir(exist_ok=True)
    page = build_page(run, data, dataset)
    atomic_write(run / REPORT_HTML, page.encode())
    return run / REPORT_HTML


def after_training(run: str | Path, rank: int, dataset=None) -> None:
    """The report at the end of `anyres-train train`, on rank 0: a failure costs one line, never the run."""
    if rank != 0:
        return
    try:
        write_report(run, dataset=dataset)
    except Exception as exc:  # the run's results are safe on disk; the report is a view of them
        print(f"anyres-train: the run report was not written: {clip(' '.join(str(exc).split()), 300)}",
              file=sys.stderr)
