"""Building URL lists of every case against the test server, and reading results back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq

from curation.fetch import WorkerConfig
from curation.http import FetchConfig
from curation.items import url_key
from curation.pipeline import CurateConfig
from shards import Dataset
from shards.intake.admission import FilterConfig

FAST_FETCH = FetchConfig(timeout=0.8, connect_timeout=0.5, retries=1, backoff=0.02, max_bytes=2 * 2**20, per_host=8)


def fast_config(slice_size: int = 5, **filters) -> CurateConfig:
    worker = WorkerConfig(fetch=FAST_FETCH, filters=FilterConfig(**filters), threads=8,
                          staging_shard_bytes=4 * 2**20)
    return CurateConfig(worker=worker, slice_size=slice_size, max_shard_bytes=3 * 2**20)


def url_rows(server, corpus, refused_url: str) -> tuple[list[dict], dict[str, dict], dict[str, str]]:
    """CSV rows, the expected metadata of kept URLs, and the expected reason of every other
    row (by URL; a URL listed twice appears once, with the later row's reason)."""
    good, bad = corpus
    rows, kept, rejected = [], {}, {}
    for name, (_, expect) in good.items():
        url = server.url(f"img/{name}")
        rows.append({"url": url, "license": "cc-by-4.0", "owner": f"owner of {name}", "title": name})
        kept[url] = expect
    for name, (_, reason) in bad.items():
        rows.append({"url": server.url(f"img/{name}"), "license": "", "owner": "", "title": ""})
        rejected[server.url(f"img/{name}")] = reason
    for path, reason in [("status/404", "http-404"), ("status/500", "http-500"), ("hang", "timeout"),
                         ("trickle", "timeout"), ("huge-declared", "too-large"), ("huge-chunked", "too-large"),
                         ("html/photo-0.jpg", "not-an-image"), ("img/missing.jpg", "http-404")]:
        rows.append({"url": server.url(path), "license": "", "owner": "", "title": ""})
        rejected[server.url(path)] = reason
    for url, reason in [(refused_url, "connection-refused"), ("file:///etc/hostname", "unsupported-scheme"),
                        ("ftp://127.0.0.1/photo.jpg", "unsupported-scheme")]:
        rows.append({"url": url, "license": "", "owner": "", "title": ""})
        rejected[url] = reason
    # Kept after one 503: retries work inside a whole run too.
    flaky = server.url("flaky/1/photo-2.jpg")
    rows.append({"url": flaky, "license": "", "owner": "", "title": ""})
    # The same bytes as photo-2 at a second URL: an exact duplicate, merged into the sample
    # with the better provenance (the /img/ row has a licence).
    rejected[flaky] = "duplicate"
    # A URL listed again, far from its first row (another slice).
    rows.append({"url": server.url("img/photo-0.jpg"), "license": "", "owner": "", "title": ""})
    return rows, kept, rejected


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def rejects_of(out: Path) -> list[dict]:
    return pq.read_table(out / "work" / "rejects.parquet").to_pylist()


def snapshot(out: Path) -> dict:
    """What must not differ between two runs over the same input."""
    ds = Dataset(str(out))
    rows = ds.index.select(["key", "sha256", "width", "height", "shard", "offset"]).to_pylist()
    rejects = sorted((r["source_id"], r["reason"]) for r in rejects_of(out))
    manifest = json.loads((out / "dataset.json").read_text())
    return {"rows": rows, "rejects": rejects, "shards": [(s["name"], s["nbytes"]) for s in manifest["shards"]],
            "counts": manifest["curation"]["counts"]}


def key(url: str) -> str:
    return url_key(url)
