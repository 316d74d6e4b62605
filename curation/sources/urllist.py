"""The URL-list source: .txt (one URL a line), .csv, .tsv, .jsonl or .parquet, read streaming.

Rows are read a chunk at a time (parquet record batches, csv and json lines one by one), so a
list of millions of URLs never sits in memory. Optional columns carry provenance into the
metadata: licence, owner, title. A row that names no URL, or does not parse, still takes its
place and ends as a reject.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from shards import DatasetError

from ..http import FetchConfig, HttpClient
from ..items import Item, url_key
from . import Opener

FORMATS = {".txt": "txt", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}
PROVENANCE_COLUMNS = ("license", "owner", "title")
BATCH_ROWS = 8192


@dataclass(frozen=True)
class UrlListSource:
    path: str
    url_col: str = "url"
    columns: dict[str, str] = field(default_factory=dict)  # metadata field -> column, e.g. license -> lic
    kind: str = "url"

    def __post_init__(self) -> None:
        path = Path(self.path)
        if not path.is_file():
            raise DatasetError(f"no such file: {self.path}")
        if self.format is None:
            raise DatasetError(f"{self.path}: unknown list format; use one of {', '.join(FORMATS)}")
        header = self._header()
        if header is None:
            return
        wanted = [self.url_col, *self.columns.values()]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise DatasetError(f"{self.path}: no column {', '.join(map(repr, missing))} "
                               f"(columns: {', '.join(header) or 'none'}); choose one with --url-col etc.")

    @property
    def format(self) -> str | None:
        return FORMATS.get(Path(self.path).suffix.lower())

    def _header(self) -> list[str] | None:
        """Column names, where the format has them up front (jsonl rows are checked one by one)."""
        try:
            if self.format == "parquet":
                return pq.ParquetFile(self.path).schema_arrow.names
            if self.format in ("csv", "tsv"):
                with open(self.path, newline="", encoding="utf-8") as f:
                    return next(csv.reader(f, delimiter=self._delimiter), [])
        except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
            raise DatasetError(f"cannot read {self.path}: {exc}") from None
        return None

    @property
    def _delimiter(self) -> str:
        return "\t" if self.format == "tsv" else ","

    def describe(self) -> dict[str, Any]:
        return {"source": "url", "path": str(Path(self.path).absolute()), "format": self.format,
                "url_col": self.url_col, "columns": dict(self.columns)}

    def rows(self) -> Iterator[dict[str, Any] | str]:
        """Each row as a dict, or as a string saying why it cannot be read."""
        if self.format == "parquet":
            wanted = sorted({self.url_col, *self.columns.values()})
            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=BATCH_ROWS, columns=wanted):
                yield from batch.to_pylist()
            return
        with open(self.path, newline="", encoding="utf-8", errors="replace") as f:
            if self.format == "txt":
                for line in f:
                    if line.strip() and not line.lstrip().startswith("#"):
                        yield {self.url_col: line.strip()}
            elif self.format == "jsonl":
                for line in f:
                    if line.strip():
                        yield _json_row(line)
            else:
                yield from csv.DictReader(f, delimiter=self._delimiter)

    def items(self) -> Iterator[Item]:
        for position, row in enumerate(self.rows()):
            yield self._item(position, row)

    def _item(self, position: int, row: dict[str, Any] | str) -> Item:
        if isinstance(row, str):
            return Item(position, "url", f"row {position}", url_key(f"#row-{position}"), "",
                        error=("bad-row", row))
        url = row.get(self.url_col)
        if not isinstance(url, str) or not url.strip():
            return Item(position, "url", f"row {position}", url_key(f"#row-{position}"), "",
                        error=("bad-url", f"no URL in column {self.url_col!r}"))
        provenance = {name: str(row[col]) for name, col in self.columns.items() if row.get(col) not in (None, "")}
        return Item.for_url(position, url.strip(), provenance=provenance)

    def count(self) -> int | None:
        if self.format == "parquet":
            return pq.ParquetFile(self.path).metadata.num_rows
        return sum(1 for _ in self.rows())

    def opener(self, config: FetchConfig) -> Opener:
        client = HttpClient(config)
        return lambda item: client.get(item.location)


def _json_row(line: str) -> dict[str, Any] | str:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    return row if isinstance(row, dict) else f"not a JSON object: {line[:60]!r}"


def default_columns(path: str, url_col: str, given: dict[str, str | None]) -> dict[str, str]:
    """Provenance columns: those given, and the standard names where the list has them."""
    columns = {name: col for name, col in given.items() if col}
    probe = UrlListSource(path, url_col)
    header = probe._header()
    if header is None and probe.format == "jsonl":
        first = next((r for r in probe.rows() if isinstance(r, dict)), {})
        header = list(first)
    for name in PROVENANCE_COLUMNS:
        if name not in columns and header and name in header:
            columns[name] = name
    return columns
