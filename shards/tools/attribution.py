"""The complete attribution list of a dataset: one entry per sample, from its index.

CC BY and CC BY-SA require the title, the author, the licence (with a link to it) and the source
to be credited wherever the images are shared; this is that credit, as Markdown for people and
CSV for tools. Both are written row by row (a dataset may hold millions of samples), into a
temporary file renamed when complete (plumbing.atomic). The index is dataset text: every field
goes through plumbing.escape.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pyarrow as pa

from plumbing.atomic import finish, open_exclusive, tmp_path
from plumbing.escape import csv_cell, md, md_link

ATTRIBUTION_MD = "ATTRIBUTION.md"
ATTRIBUTION_CSV = "ATTRIBUTION.csv"
COLUMNS = ("key", "title", "owner", "license", "license_url", "url", "source", "source_id")
BATCH_ROWS = 8192

ATTRIBUTION_INTRO = (
    "Every image of this dataset, with its title, author, licence and source page as recorded "
    "when it was collected. Licences such as CC BY and CC BY-SA require this credit (title, "
    "author, licence with its link, source) wherever the images, or the dataset, are shared. "
    "A sample without a licence has no recorded permission: do not share it unless you hold the rights."
)


def attribution_rows(index: pa.Table) -> Iterator[dict]:
    """The attribution fields of every sample, in index order."""
    for batch in index.select(list(COLUMNS)).to_batches(max_chunksize=BATCH_ROWS):
        yield from batch.to_pylist()


def missing_credit(index: pa.Table) -> dict[str, int]:
    """How many samples lack each part of a credit (licence, author, source page)."""
    return {name: index[column].null_count for name, column in
            (("licence", "license"), ("author", "owner"), ("source page", "url"))}


def markdown_line(n: int, row: dict) -> str:
    title = md(row["title"]) or "(untitled)"
    licence = md_link(row["license"], row["license_url"]) if row["license"] else "no licence recorded"
    source = md_link(row["url"], row["url"], limit=120) if row["url"] else md(f"{row['source']}: {row['source_id']}")
    return f"| {n} | `{row['key']}` | {title} | {md(row['owner']) or 'unknown'} | {licence} | {source} |\n"


def _write_streaming(path: Path, write_body) -> Path:
    """Write through a text stream into `PATH.tmp`, renamed to `path` when complete."""
    tmp = tmp_path(path)
    raw: IO[bytes] = open_exclusive(tmp)
    try:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        write_body(text)
        text.flush()
        text.detach()
        finish(raw, tmp, path)
    except BaseException:
        raw.close()
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_attribution_md(index: pa.Table, path: Path, name: str) -> Path:
    def body(out: IO[str]) -> None:
        out.write(f"# Attribution: {md(name)}\n\n{ATTRIBUTION_INTRO}\n\n")
        out.write(f"{index.num_rows:,} samples; the same list as CSV: [{ATTRIBUTION_CSV}]({ATTRIBUTION_CSV}).\n\n")
        out.write("| # | key | title | author | licence | source |\n| ---: | --- | --- | --- | --- | --- |\n")
        for n, row in enumerate(attribution_rows(index), 1):
            out.write(markdown_line(n, row))

    return _write_streaming(path, body)


def write_attribution_csv(index: pa.Table, path: Path) -> Path:
    def body(out: IO[str]) -> None:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in attribution_rows(index):
            writer.writerow([csv_cell(row[c]) for c in COLUMNS])

    return _write_streaming(path, body)
