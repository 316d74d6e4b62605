"""URL lists in every format, read streaming, with their provenance columns; slicing."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.items import url_key
from curation.slices import plan_slices
from curation.sources.urllist import UrlListSource, default_columns
from curation.workdir import WorkDir
from shards import DatasetError

ROWS = [{"link": f"https://example.org/p/{i}.jpg", "lic": "cc-by-2.0" if i % 2 else "", "who": f"user{i}",
         "title": f"photo {i}"} for i in range(5)]


def write_list(path: Path) -> Path:
    fmt = path.suffix
    if fmt == ".txt":
        path.write_text("# a comment\n" + "\n".join(r["link"] for r in ROWS) + "\n\n")
    elif fmt in (".csv", ".tsv"):
        sep = "\t" if fmt == ".tsv" else ","
        lines = [sep.join(ROWS[0])] + [sep.join(r.values()) for r in ROWS]
        path.write_text("\n".join(lines) + "\n")
    elif fmt == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    else:
        pq.write_table(pa.Table.from_pylist(ROWS), path, row_group_size=2)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_tabular_lists_carry_their_columns(tmp_path, suffix):
    source = UrlListSource(str(write_list(tmp_path / f"list{suffix}")), "link",
                           {"license": "lic", "owner": "who", "title": "title"})
    items = list(source.items())
    assert [i.source_id for i in items] == [r["link"] for r in ROWS]
    assert [i.key for i in items] == [url_key(r["link"]) for r in ROWS]
    assert items[1].provenance == {"license": "cc-by-2.0", "owner": "user1", "title": "photo 1"}
    assert "license" not in items[0].provenance  # empty cells are absent, not ""
    assert source.count() == len(ROWS) and [i.position for i in items] == list(range(len(ROWS)))


def test_txt_list_skips_blanks_and_comments(tmp_path):
    source = UrlListSource(str(write_list(tmp_path / "list.txt")))
    assert [i.source_id for i in source.items()] == [r["link"] for r in ROWS]


def test_standard_column_names_are_picked_up(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("url,license,owner,extra\nhttps://a/1.jpg,cc0,me,x\n")
    assert default_columns(str(path), "url", {"title": None}) == {"license": "license", "owner": "owner"}


def test_bad_rows_take_their_place_as_rejects(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"url": "https://a/1.jpg"}\nnot json\n{"url": ""}\n[1, 2]\n{"url": "https://a/2.jpg"}\n')
    items = list(UrlListSource(str(path)).items())
    assert [i.error[0] if i.error else None for i in items] == [None, "bad-row", "bad-url", "bad-row", None]
    assert len({i.key for i in items}) == 5  # bad rows do not collide with each other


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.csv", "no such file"),
    (lambda p: (p / "list.xlsx").write_text("x") and p / "list.xlsx", "unknown list format"),
    (lambda p: write_list(p / "list.csv"), "no column 'url'"),
])
def test_bad_lists_are_user_errors(tmp_path, make, message):
    with pytest.raises(DatasetError, match=message):
        UrlListSource(str(make(tmp_path)))


def test_the_driver_reads_the_input_one_slice_at_a_time(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("".join(f"https://example.org/{i}.jpg\n" for i in range(100_000)))
    source = UrlListSource(str(path))
    pulled = []

    class Counting:
        kind = "url"

        def items(self):
            for item in source.items():
                pulled.append(item.position)
                yield item

    slices = plan_slices(Counting(), 1000, WorkDir(tmp_path), finished=lambda d: None)
    first = next(slices)
    assert len(first.items) == 1000 and len(pulled) == 1000  # not 100,000
    assert next(slices).items[0].position == 1000
