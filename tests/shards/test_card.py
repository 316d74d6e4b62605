"""`anyres-shards card`: the dataset card and the complete attribution list, from hostile metadata.

The dataset's name, titles, owners, licences, URLs and curation record carry markup, control
characters and link tricks; the card must show them as text, link only http(s) URLs, credit
every sample, and leave `verify` content.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from plumbing.escape import md, safe_url
from shards import DatasetWriter, WriterConfig
from shards.tools.cli import build_parser, main
from tests.cli_outcome import one_error_line, run_main, unexplained_flags
from tests.factories import make_sample

HOSTILE_TITLE = "<script>alert(1)</script>\x1b[31m"
HOSTILE_NAME = "set <b>$x$</b> | [click](javascript:alert(1))\n# heading"
LICENCES = [("cc-by-4.0", "https://creativecommons.org/licenses/by/4.0/"),
            ("cc-by-sa-4.0", "https://creativecommons.org/licenses/by-sa/4.0/"),
            ("evil", "javascript:alert(document.cookie)"), (None, None)]
CURATION = {"tool": "tests <i>curate</i>", "config": {"min_side": 1, "note": "```\n<script>x</script>"},
            "sources": [{"source": "folder", "path": "/photos/<img src=x onerror=alert(1)>"}],
            "counts": {"seen": 9, "kept": 8, "rejected": 1},
            "rejects": {"<img src=x onerror=alert(1)>": 1},
            "dedup": {"stages": ["exact-sha256"], "clusters": 0, "removed": 0}}


def provenance(i: int) -> dict:
    licence, licence_url = LICENCES[i % len(LICENCES)]
    fields = {"license": licence, "license_url": licence_url, "owner": f"Owner {i} | *bold*",
              "title": f"Photo {i}", "url": f"https://photos.example.org/p/{i}?a=1&b=(2)"}
    if i == 0:
        fields["title"] = HOSTILE_TITLE
    if i == 1:
        fields.update(title="T" * 10_000, owner="=HYPERLINK(\"http://evil\")", url="javascript:alert(1)")
    return fields


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("card") / "ds"
    metas = []
    with DatasetWriter(root, WriterConfig(name=HOSTILE_NAME)) as writer:
        for i in range(8):
            meta, data = make_sample(i, 40 + 8 * i, 48)
            meta = dataclasses.replace(meta, **provenance(i))
            writer.add(meta, data)
            metas.append(meta)
        writer.finalize(curation=CURATION)
    return root, metas


@pytest.fixture(scope="module")
def card(dataset) -> Path:
    root, _ = dataset
    assert main(["card", str(root)]) == 0
    return root


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("href", "src") and v is not None]

    def handle_data(self, data):
        self.text.append(data)


def markdown_targets(text: str) -> list[str]:
    return re.findall(r"(?<!\\)\]\(([^)\s]*)\)", text)


def test_card_files_sit_beside_the_dataset_and_verify_still_passes(card, capsys):
    names = {"CARD.md", "CARD.html", "card-sizes.png", "ATTRIBUTION.md", "ATTRIBUTION.csv"}
    assert names <= {p.name for p in card.iterdir()}
    assert (card / "card-sizes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert main(["verify", str(card)]) == 0  # verify reads manifest, index and shards/ only
    assert capsys.readouterr().out.startswith("OK: 8 samples")


def test_card_counts_licences_sources_and_curation(card):
    text = (card / "CARD.md").read_text()
    assert "| samples | 8 |" in text and "| shards | 1 |" in text
    assert "[cc-by-4.0](https://creativecommons.org/licenses/by/4.0/) | 2 | 25%" in text
    assert "| no licence recorded | 2 | 25%" in text
    assert "| host photos.example.org | 7 |" in text  # one sample's URL is not http(s)
    assert "| seen | 9 |" in text and "| rejected | 1 |" in text
    assert "\\<img src=x onerror=alert\\(1\\)\\> | 1 |" in text  # the reject reason, as text
    assert "## Curation config" in text and '"min_side": 1' in text and "![" in text


def test_card_shows_hostile_text_as_text_and_links_only_http(card):
    for name in ("CARD.md", "ATTRIBUTION.md"):
        # The curation config is JSON in a fenced code block, where Markdown shows < as it is.
        text, _, config = (card / name).read_text().partition("```json\n")
        closing = [i for i, line in enumerate(config.splitlines()) if re.fullmatch(r" {0,3}(`{3,}|~{3,})\s*", line)]
        assert closing == ([len(config.splitlines()) - 1] if name == "CARD.md" else []), name  # nothing breaks out
        assert "\x1b" not in text and "<script>" not in text and "<b>" not in text, name
        for target in markdown_targets(text):
            assert target.startswith(("https://", "ATTRIBUTION.", "card-sizes.png")), (name, target)
        assert "javascript" not in "".join(markdown_targets(text))
    attribution = (card / "ATTRIBUTION.md").read_text()
    assert md(HOSTILE_TITLE) == r"\<script\>alert\(1\)\</script\>\\x1b\[31m" and md(HOSTILE_TITLE) in attribution
    assert "T" * 400 not in attribution and "T" * 290 + "…" in attribution  # bounded
    assert "Owner 2 \\| \\*bold\\*" in attribution  # no table cell break, no emphasis
    assert "https://photos.example.org/p/2?a=1&b=%282%29" in attribution  # no parenthesis ends the link
    # Dataset name: one line, no markup, no maths, no link.
    title = (card / "CARD.md").read_text().splitlines()[0]
    assert title.startswith("# Dataset card: set \\<b\\>\\$x\\$\\</b\\> \\| \\[click\\]\\(javascript")
    assert title.endswith(r"\\x0a# heading")


def test_card_html_holds_no_markup_from_the_dataset(card):
    page = Links()
    page.feed((card / "CARD.html").read_text())
    assert set(page.tags) <= {"html", "head", "meta", "link", "title", "style", "body", "h1", "h3", "img", "p", "a",
                              "table", "tr", "th", "td", "pre"}
    assert "<img src=x onerror=alert(1)>" in "".join(page.text)  # shown as text
    for ref in page.refs:
        assert ref.startswith("https://") or ref == "data:," or (card / ref).is_file(), ref


HOSTILE_LICENCE = "<a href=javascript:alert(1)>cc-by</a>\"'&"


def test_card_html_shows_a_hostile_name_and_licence_as_text_and_no_unsafe_link(dataset):
    """The templates' autoescape: the name in <title> and <h1>, a licence name that is a link
    tag, and a licence URL that is javascript:, each shown as text; only http(s) URLs are links."""
    from shards.format.reader import Dataset
    from shards.tools.card import Licence, card_page, read_card

    card = dataclasses.replace(read_card(Dataset(dataset[0])), licences=[
        Licence(HOSTILE_LICENCE, "javascript:alert(document.cookie)", 3),
        Licence("cc-by-4.0", "https://creativecommons.org/licenses/by/4.0/?a=1&b=<x>", 2)])
    html = card_page(card)
    page = Links()
    page.feed(html)
    shown = "".join(page.text)
    assert HOSTILE_LICENCE not in html and "<b>" not in html and "javascript" not in "".join(page.refs)
    assert HOSTILE_LICENCE in shown  # the licence name, as text
    assert page.tags.count("a") == 4  # the card's three files and the one http(s) licence
    assert "https://creativecommons.org/licenses/by/4.0/?a=1&b=%3Cx%3E" in page.refs  # quoted by safe_url
    name = "Dataset card: set <b>$x$</b> | [click](javascript:alert(1))\\x0a# heading"
    assert shown.count(name) == 2  # <title> and <h1>, one line, as text


def test_attribution_lists_every_sample_in_markdown_and_csv(card, dataset):
    _, metas = dataset
    lines = [line for line in (card / "ATTRIBUTION.md").read_text().splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(lines) == len(metas)
    for meta, line in zip(metas, lines):
        assert f"`{meta.key}`" in line
        assert (f"]({meta.license_url})" in line) == (safe_url(meta.license_url) is not None)
        assert md(meta.license) in line if meta.license else "no licence recorded" in line
    with open(card / "ATTRIBUTION.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["key"] for r in rows] == [m.key for m in metas]
    assert [r["license_url"] for r in rows] == [m.license_url or "" for m in metas]
    assert rows[0]["title"] == "<script>alert(1)</script>\\x1b[31m"  # controls escaped, text kept
    assert rows[1]["owner"].startswith("'=HYPERLINK")  # no formula when opened in a spreadsheet


def test_card_of_a_url_needs_a_folder_and_writes_there(dataset, http_server, tmp_path, capsys):
    root, _ = dataset
    base, _ = http_server(root.parent)
    url = f"{base}/{root.name}"
    line = one_error_line(run_main(main, ["card", url]), capsys.readouterr().err)
    assert "give -o DIR" in line
    assert main(["card", url, "-o", str(tmp_path / "card")]) == 0
    assert (tmp_path / "card" / "ATTRIBUTION.csv").read_text().count("\n") == 9


@pytest.mark.parametrize("broken", ["missing", "not-json", "no-index"])
def test_a_missing_or_broken_dataset_is_one_error_line(dataset, tmp_path, capsys, broken):
    root = tmp_path / "ds"
    if broken != "missing":
        import shutil

        shutil.copytree(dataset[0], root, ignore=shutil.ignore_patterns("CARD*", "ATTRIBUTION*", "card-*"))
        if broken == "not-json":
            (root / "dataset.json").write_text("{not json")
        else:
            (root / "index.parquet").unlink()
    line = one_error_line(run_main(main, ["card", str(root)]), capsys.readouterr().err)
    assert line.startswith("anyres-shards: error:")
    assert not (root / "CARD.md").exists()


def test_help_gives_every_flag_a_sentence(capsys):
    assert run_main(main, ["card", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "ATTRIBUTION.md" in shown and "CC BY-SA" in shown
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert unexplained_flags(sub.choices["card"], min_words=5, shown=shown) == []
