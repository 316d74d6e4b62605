"""The run report, RUN/report.html: written at the end of training and by `anyres-train report`,
one page that opens offline with every part of a run, checked in a real headless Chromium.

One tiny run (a few seconds) on a dataset with licences, owners and a hostile title; then
anyres-generate adds images and a zoom, and a metrics.jsonl in anyres-eval's row format adds
the metric tables and the per-scale pFID plot.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

from shards import DatasetWriter, WriterConfig
from tests.cli_outcome import one_error_line, run_main, unexplained_flags
from tests.factories import encode, gradient, meta_for
from training.commands.generate import main as generate_main
from training.commands.train import build_parser, main, train
from training.run import run_report as html_report

from .chromium import Chromium, find_chromium, screenshot_is_blank
from .gan_helpers import tiny_config

HOSTILE_TITLE = "<script>alert(1)</script>\x1b[31m"
LICENCES = [("cc-by-4.0", "https://creativecommons.org/licenses/by/4.0/"),
            ("cc-by-sa-4.0", "https://creativecommons.org/licenses/by-sa/4.0/")]
METRICS = [  # anyres-eval's rows (training/eval/metrics.py), one of each kind
    {"metric": "kid-full", "value": 0.12, "std": 0.01, "size": 16, "n": 64},
    {"metric": "hf-patch", "value": 3.5, "real": 4.0, "ratio": 0.875, "p": 16, "s_min": 16, "s_max": None, "n": 64},
    {"metric": "pfid-bins", "bin": "[1,2)", "value": 80.0, "p": 16, "s_min": 16, "s_max": None, "n": 30},
    {"metric": "pfid-bins", "bin": "[2,4)", "value": 95.5, "p": 16, "s_min": 16, "s_max": None, "n": 34},
    {"metric": "spectrum-patch", "bin": "[2,4)", "value": 0.25, "p": 16, "s_min": 32, "s_max": 48, "n": 34,
     "bands": [[0.0625, 0.125], [0.125, 0.25], [0.25, 0.5]], "band_real": [40.0, 9.0, 2.0],
     "band_fake": [38.0, 4.5, 0.5], "band_ratio": [0.95, 0.5, 0.25], "fake": "patch"},
    {"metric": "spectrum-patch-up", "bin": "[2,4)", "value": 0.01, "p": 16, "s_min": 32, "s_max": 48, "n": 34,
     "bands": [[0.0625, 0.125], [0.125, 0.25], [0.25, 0.5]], "band_real": [40.0, 9.0, 2.0],
     "band_fake": [39.0, 1.5, 0.02], "band_ratio": [0.975, 1 / 6, 0.01], "fake": "patch-lanczos",
     "imaging_from": 0.25},
    {"metric": "spectrum-patch", "bin": "[3,4)", "bands": "<img src=x onerror=alert(1)>"},  # refused, not drawn
]


def write_dataset(root: Path) -> list[str]:
    """Licensed, credited images, one with a hostile title; returns the URLs the page may link to."""
    urls = []
    with DatasetWriter(root, WriterConfig(name="report <b>test</b>")) as writer:
        for i in range(12):
            data = encode(gradient(64, 48, seed=i), "PNG")
            licence, licence_url = LICENCES[i % 2]
            url = f"https://photos.example.org/p/{i}"
            meta = dataclasses.replace(meta_for(data, f"img-{i:04d}"), license=licence, license_url=licence_url,
                                       owner=f"Owner {i}", title=HOSTILE_TITLE if i == 0 else f"Photo {i}", url=url)
            writer.add(meta, data)
            urls += [licence_url, url]
        writer.finalize(curation={"tool": "tests"})
    return urls


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny run; `auto` is the page training wrote itself, before anything was added."""
    import torch

    base = tmp_path_factory.mktemp("report")
    data, out = base / "ds", base / "run"
    urls = write_dataset(data)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see gan_helpers.one_thread
    try:
        train(tiny_config(data, out, kimg=0.08, tick_kimg=0.04, snap_ticks=1, report=True))
    finally:
        torch.set_num_threads(threads)
    auto = (out / "report.html").read_text()
    for argv in (["--out", out / "generated", "--seeds", "0-1", "--size", 32, "--tile", 16],
                 ["--out", out / "zoom", "--zoom", "--seeds", 0, "--frames", 3, "--frame-size", 16]):
        assert generate_main([str(out / "checkpoint.pt"), *map(str, argv)]) == 0
    snapshot = str(sorted(out.glob("network-snapshot-*.pt"))[-1])
    rows = [{"snapshot": snapshot, "kimg": 0.08, "network": "efficientnet-lite0", "seed": 0, "comparable": False,
             "note": "features <i>not</i> Inception", **r} for r in METRICS]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"out": out, "data": data, "urls": set(urls), "auto": auto}


@pytest.fixture(scope="module")
def page(run) -> str:
    assert main(["report", str(run["out"])]) == 0
    return (run["out"] / "report.html").read_text()


class Page(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[tuple[str, str]] = []  # (tag, href or src)
        self.text: list[str] = []
        self.styles: list[str] = []
        self.attrs: list[tuple[str, dict]] = []  # (tag, its attributes)
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [(tag, v) for k, v in attrs if k in ("href", "src") and v is not None]
        self.styles += [v for k, v in attrs if k == "style" and v]
        self.attrs.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.slow  # the module's run trains
def test_training_writes_the_report_itself(run):
    auto = Page(run["auto"])
    shown = " ".join(auto.text)
    assert "cc-by-4.0" in shown and "Owner" not in shown  # licences in the panel; credits in ATTRIBUTION.md
    assert "anyres-generate" in shown and "No metrics.jsonl yet" in shown  # says how to make what is missing
    assert any(src.endswith("curves.png") for tag, src in auto.refs if tag == "img")


@pytest.mark.slow  # the module's run trains
def test_the_page_holds_every_part_of_the_run(run, page):
    parsed, out = Page(page), run["out"]
    shown = " ".join(parsed.text)
    images = [src for tag, src in parsed.refs if tag == "img"]
    grids = sorted(p.name for p in out.glob("samples-*.png"))
    assert len(grids) == 2 and all(g in images for g in grids)
    assert {"curves.png", "report/dataset/card-sizes.png", "report/dataset/grid.png"} <= set(images)
    assert {"generated/seed0000.png", "generated/seed0001.png", "zoom/zoom-seed0000.webp"} <= set(images)
    assert not any("frame-" in src for src in images)  # the zoom's frames are in its WebP
    assert "report/pfid-bins.png" in images and (out / "report/pfid-bins.png").stat().st_size > 5000
    assert "report/spectrum.png" in images and (out / "report/spectrum.png").stat().st_size > 5000
    assert "Detail: power per frequency band" in shown and "0.5" in shown  # the ratio table, rendered over real
    for text in ("kid-full", "± 0.01", "real 4", "[1,2)", "95.5", "efficientnet-lite0", "global/patches",
                 "lr_g", "cc-by-sa-4.0", "ATTRIBUTION.md", "seed 0, 32 x 32", "3 frames of 16 px"):
        assert text in shown, text
    assert "features <i>not</i> Inception" in shown  # a file's text, shown as text


@pytest.mark.slow  # the module's run trains
def test_every_string_from_files_is_escaped(run, page):
    parsed = Page(page)
    assert set(parsed.tags) <= {"html", "head", "meta", "link", "title", "style", "body", "h1", "h2", "h3", "p",
                                "code", "table", "tr", "th", "td", "a", "img", "nav", "section", "div", "figure",
                                "figcaption", "details", "summary", "pre", "ol", "li"}
    assert "<b>test</b>" in (run["data"] / "dataset.json").read_text() and "<b>test" not in page
    attribution = (run["out"] / "report/dataset/ATTRIBUTION.md").read_text()
    assert attribution.count("| Owner ") == 12 and "<script>" not in attribution and "\x1b" not in attribution


@pytest.mark.slow  # the module's run trains
def test_every_reference_resolves_offline(run, page):
    out = run["out"]
    parsed = Page(page)
    assert not parsed.styles and "url(" not in page and "@import" not in page
    for tag, ref in parsed.refs:
        parts = urlsplit(ref)
        if parts.scheme in ("http", "https"):  # only credit links leave the run folder
            assert tag == "a" and ref in run["urls"], ref
        elif ref.startswith("#"):
            assert f'id="{ref[1:]}"' in page, ref
        elif ref != "data:,":  # the empty favicon, so that the browser asks for none
            assert not parts.scheme and not parts.netloc, ref
            target = (out / unquote(parts.path)).resolve()
            assert target.is_file() and target.is_relative_to(out.resolve()), ref


@pytest.mark.slow  # the module's run trains
def test_a_gone_dataset_is_said_in_the_panel(run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run["out"], out, ignore=shutil.ignore_patterns("*.pt", "report*"))
    assert main(["report", str(out), "--data", str(tmp_path / "gone")]) == 0
    shown = " ".join(Page((out / "report.html").read_text()).text)
    assert "cannot be read now" in shown and "no such dataset" in shown and "Loader counters" in shown
    line = one_error_line(run_main(main, ["report", str(tmp_path / "nothing")]), capsys.readouterr().err)
    assert "no such run folder" in line


def test_a_failing_report_never_fails_training(tmp_path, capsys, monkeypatch):
    def broken(run, data=None, dataset=None):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(html_report, "write_report", broken)
    html_report.after_training(tmp_path, rank=0)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the run report was not written: disk on fire second line" in err
    html_report.after_training(tmp_path, rank=1)  # other ranks write nothing, say nothing
    assert capsys.readouterr().err == ""


def test_help_gives_every_flag_a_sentence(capsys):
    assert run_main(main, ["report", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "report.html" in shown and "offline" in shown
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert unexplained_flags(sub.choices["report"], min_words=5, shown=shown) == []


@pytest.fixture(scope="module")
def chromium():
    binary, why = find_chromium()
    if binary is None:
        pytest.skip(why)
    browser = Chromium(binary)
    yield browser
    browser.close()


@pytest.mark.slow  # the module's run trains
def test_the_report_opens_in_headless_chromium_without_errors(run, page, chromium):
    result = chromium.check((run["out"] / "report.html").resolve().as_uri())
    assert result.errors == [] and result.broken_images == []
    assert result.images >= 10  # curves, 2 grids, size plot, contact sheet, 2 images, the zoom, pFID, spectra
    assert not screenshot_is_blank(result.screenshot)
    card = chromium.check((run["out"] / "report/dataset/CARD.html").resolve().as_uri())
    assert card.errors == [] and card.broken_images == [] and card.images == 1


def test_the_browser_check_sees_what_a_broken_page_does(chromium, tmp_path):
    (tmp_path / "bad.html").write_text('<!doctype html><link rel="icon" href="data:,"><body style="background:#fff">'
                                       '<img src="missing.png"><script>console.error("boom")</script></body>')
    result = chromium.check((tmp_path / "bad.html").as_uri())
    assert any("boom" in e for e in result.errors) and any("ERR_FILE_NOT_FOUND" in e for e in result.errors)
    assert result.broken_images == [(tmp_path / "missing.png").as_uri()] and screenshot_is_blank(result.screenshot)


def test_a_relative_dataset_is_found_from_where_training_ran(tmp_path, monkeypatch):
    (tmp_path / "work" / "data" / "ds").mkdir(parents=True)
    run = tmp_path / "work" / "runs" / "one"
    config = {"loader": {"data": "data/ds"}, "out": "./runs/one/"}  # as trained from tmp_path/work
    monkeypatch.chdir(tmp_path)
    assert html_report.dataset_location(run, config, None) == str(tmp_path / "work" / "data" / "ds")
    assert html_report.dataset_location(run, config, "elsewhere") == "elsewhere"
    assert html_report.dataset_location(run, {"loader": {"data": "gone"}, "out": "runs/one"}, None) == "gone"
    assert html_report.dataset_location(run, {"loader": "not a dict"}, None) is None


HOSTILE = "<img src=x onerror=alert(1)>\"&'"


def test_a_hostile_string_in_each_input_is_shown_as_text(tmp_path):
    """Every input the page shows, each holding markup: a config value, a loader counter, a metric's
    note, bin and network, a sample grid's and a generated image's file name, a sidecar's seed, the
    dataset's location. Each is text on the page; none becomes a tag or an attribute."""
    from PIL import Image

    run = tmp_path / "run"
    (run / "generated").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"stage": HOSTILE, "g": {"resolution": 16, "note": HOSTILE},
                                                 "loader": {"data": f"/gone/{HOSTILE}"}}))
    (run / "stats.jsonl").write_text(json.dumps({"kimg": 1, "loader": {HOSTILE: 3}}) + "\n")
    grid, image = f"samples-000001{HOSTILE}.png", f"x{HOSTILE}.png"
    for path in (run / "samples-000000.png", run / grid, run / "generated" / image):
        Image.new("RGB", (4, 4)).save(path)
    (run / "generated" / f"x{HOSTILE}.json").write_text(json.dumps({"seed": HOSTILE, "width": 4, "height": 4}))
    rows = [{"snapshot": "s", "metric": "kid", "value": 1.0, "note": f"note {HOSTILE}", "network": HOSTILE},
            {"snapshot": "s", "metric": "pfid-bins", "bin": HOSTILE, "value": 2.0}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = html_report.write_report(run).read_text()
    parsed = Page(page)
    shown = " ".join(" ".join(parsed.text).split())
    assert HOSTILE not in page and "onerror" not in {k for _, attrs in parsed.attrs for k in attrs}
    assert "<th>stage</th>" in page  # the page's own markup is still markup
    for text in (json.dumps(HOSTILE), f"{HOSTILE} 3", f"not comparable with published numbers: note {HOSTILE}",
                 f"snapshot {HOSTILE} s 2", f"Latest: {grid}", f"{image}: seed {HOSTILE}, 4 x 4", f"/gone/{HOSTILE}"):
        assert text in shown, text
    assert ("img", {"src": quote(grid), "alt": grid, "class": "wide"}) in parsed.attrs  # the name as text
    assert all(src != "x" for tag, src in parsed.refs)


def test_the_dataset_card_in_the_report_shows_hostile_licences_as_text(tmp_path):
    """The dataset panel draws the card's tables with the card's own macros, from plain data: a
    licence name holding markup is text, a javascript: licence URL is no link, an http(s) one is."""
    root, run = tmp_path / "ds", tmp_path / "run"
    with DatasetWriter(root, WriterConfig(name=HOSTILE)) as writer:
        for i, (licence, url) in enumerate([(HOSTILE, "javascript:alert(1)"), ("cc-by-4.0", "https://l.example/?a=<b>")]):
            data = encode(gradient(32, 24, seed=i), "PNG")
            writer.add(dataclasses.replace(meta_for(data, f"img-{i}"), license=licence, license_url=url), data)
        writer.finalize(curation={"tool": "tests", "config": {"note": HOSTILE}})
    run.mkdir()
    (run / "config.json").write_text("{}")
    page = html_report.write_report(run, data=str(root)).read_text()
    parsed = Page(page)
    shown = " ".join(" ".join(parsed.text).split())
    assert HOSTILE not in page and "onerror" not in {k for _, attrs in parsed.attrs for k in attrs}
    assert f"{HOSTILE} 1 50%" in shown and json.dumps(HOSTILE) in shown  # the licence row; the config
    links = [href for tag, href in parsed.refs if tag == "a"]
    assert "https://l.example/?a=%3Cb%3E" in links and not any("javascript" in href for href in links)
    assert "report/dataset/ATTRIBUTION.md" in links and "report/dataset/CARD.md" in links
