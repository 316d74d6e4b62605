"""Whole runs, inline engine: every good case kept with its metadata, every bad one a reject
with its reason, duplicates merged, and the result a dataset that passes `verify --deep`."""

import json
import os

import pytest

from curation.engine import InlineEngine
from curation.entry import curate
from curation.items import url_key
from curation.sources.folder import FolderSource
from curation.sources.urllist import UrlListSource
from curation.status import status
from shards import Dataset, DatasetError
from shards.intake.pack import file_key
from shards.tools.verify import verify_dataset

from .helpers import fast_config, rejects_of, url_rows, write_csv

PROVENANCE = {"license": "license", "owner": "owner", "title": "title"}


@pytest.fixture
def url_run(tmp_path, image_server, corpus, refused_url):
    rows, kept, rejected = url_rows(image_server, corpus, refused_url)
    listing = write_csv(tmp_path / "urls.csv", rows)
    source = UrlListSource(str(listing), "url", PROVENANCE)
    out = tmp_path / "ds"
    manifest = curate(source, out, fast_config(), InlineEngine())
    return out, manifest, rows, kept, rejected, source


def test_url_list_keeps_the_right_samples_with_the_right_metadata(url_run, image_server):
    out, manifest, rows, kept, _, _ = url_run
    ds = Dataset(str(out))
    index = {r["key"]: r for r in ds.index.to_pylist()}
    assert set(index) == {url_key(u) for u in kept}
    for url, expect in kept.items():
        row = index[url_key(url)]
        assert {k: row[k] for k in expect} == expect, url
        assert (row["url"], row["source"], row["source_id"]) == (url, "url", url)
        name = url.rsplit("/", 1)[1]
        assert (row["license"], row["owner"], row["title"]) == ("cc-by-4.0", f"owner of {name}", name)
    assert verify_dataset(str(out), deep=True).ok
    # Every request named the tool.
    assert {ua for _, ua in image_server.requests} == {"anyres-curate/0.1 (image dataset curation; +https://pypi.org/project/anyres)"}


def test_every_bad_url_is_a_reject_with_its_reason(url_run):
    out, manifest, rows, kept, rejected, _ = url_run
    found = rejects_of(out)
    by_url = {}
    for r in found:
        by_url.setdefault(r["source_id"], []).append(r["reason"])
    photo0 = next(u for u in kept if u.endswith("/photo-0.jpg"))
    assert by_url.pop(photo0) == ["duplicate-url"]
    assert {u: reasons[0] for u, reasons in by_url.items()} == rejected
    counts = manifest["curation"]["counts"]
    assert counts["items"] == len(rows) and counts["kept"] == len(kept) == manifest["num_samples"]
    assert counts["rejected"] == len(found) == len(rows) - len(kept)
    reasons = manifest["curation"]["rejects"]
    assert sum(reasons.values()) == len(found) and reasons["timeout"] == 2 and reasons["unsupported-scheme"] == 2


def test_exact_duplicates_merge_into_the_best_provenance(url_run, image_server):
    out, *_ = url_run
    ds = Dataset(str(out))
    keeper = ds.get(url_key(image_server.url("img/photo-2.jpg")))
    flaky = image_server.url("flaky/1/photo-2.jpg")
    assert keeper.meta.dup_count == 1
    assert keeper.meta.extra["duplicates"] == [{"key": url_key(flaky), "source": "url", "source_id": flaky,
                                                "url": flaky, "width": 480, "height": 320, "reason": "duplicate"}]
    dedup = json.loads((out / "dataset.json").read_text())["curation"]["dedup"]
    assert dedup["duplicate"] == 1 and dedup["duplicate-url"] == 1


def test_rerun_of_a_finished_run_does_nothing(url_run, image_server):
    out, manifest, *_, source = url_run
    before = len(image_server.requests)
    again = curate(source, out, fast_config(), InlineEngine())
    assert len(image_server.requests) == before and again["created"] == manifest["created"]
    with pytest.raises(DatasetError, match="min_side|filters"):
        curate(source, out, fast_config(min_side=300), InlineEngine())
    report = status(out)
    assert report["state"] == "complete" and report["num_samples"] == manifest["num_samples"]


def test_restart_discards_the_work_and_redoes_it(url_run, image_server):
    out, manifest, *_, source = url_run
    before = len(image_server.requests)
    again = curate(source, out, fast_config(min_side=300), InlineEngine(), restart=True)
    assert len(image_server.requests) > before
    assert again["curation"]["config"]["worker"]["filters"]["min_side"] == 300
    rejects = {r["source_id"].rsplit("/", 1)[-1]: r["reason"] for r in rejects_of(out)}
    assert rejects["rgb16.png"] == "too-small"  # 320x280: kept before, below the new bound
    assert again["num_samples"] == manifest["num_samples"] - 1


class CrashAfter:
    """An engine that dies after finishing `n` slices, like a killed run."""

    def __init__(self, n):
        self.n, self.workers = n, 1

    def run(self, slices, work, source, config, progress, done):
        from curation.fetch import run_slice

        for i, task in enumerate(slices):
            if i == self.n:
                raise KeyboardInterrupt
            done(run_slice(work, task, source, config, report=progress))

    def close(self):
        pass


def test_an_interrupted_run_resumes_without_refetching_finished_slices(tmp_path, image_server, corpus):
    good, _ = corpus
    urls = [image_server.url(f"img/{name}") for name in good] + [image_server.url("status/404")]
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(urls) + "\n")
    source = UrlListSource(str(listing))
    out = tmp_path / "ds"
    with pytest.raises(KeyboardInterrupt):
        curate(source, out, fast_config(slice_size=4), CrashAfter(2))
    mid = status(out)
    assert (mid["state"], mid["slices_done"], mid["items_done"]) == ("fetching", 2, 8)
    first_paths = [p for p, _ in image_server.requests]
    image_server.requests.clear()
    manifest = curate(source, out, fast_config(slice_size=4), InlineEngine())
    refetched = {p for p, _ in image_server.requests}
    assert not refetched & set(first_paths[:8])  # the two finished slices were not redone
    assert manifest["num_samples"] == len(good)
    assert sorted(Dataset(str(out)).index["key"].to_pylist()) == sorted(url_key(u) for u in urls[:-1])


def test_folder_source_keeps_photos_and_rejects_every_bad_file(tmp_path, corpus):
    good, bad = corpus
    root = tmp_path / "photos"
    (root / "nested" / "deeper").mkdir(parents=True)
    for i, (name, (data, _)) in enumerate(good.items()):
        (root / ("nested/deeper" if i % 3 == 0 else "nested" if i % 3 == 1 else ".") / name).write_bytes(data)
    for name, (data, _) in bad.items():
        (root / name).write_bytes(data)
    (root / "copy-of-photo-1.jpg").write_bytes(good["photo-1.jpg"][0])  # same bytes, other name
    (root / "readme.txt").write_text("not an image file name: ignored")
    os.symlink(root / "nested", root / "nested" / "deeper" / "loop")  # a folder link back up
    os.symlink(root / "nowhere.jpg", root / "broken.jpg")  # a dangling link
    os.symlink("self.jpg", root / "self.jpg")  # a link to itself
    os.mkfifo(root / "pipe.jpg")  # reading it would block forever
    manifest = curate(FolderSource(str(root)), tmp_path / "ds", fast_config(), InlineEngine())
    rejects = {r["source_id"]: r["reason"] for r in rejects_of(tmp_path / "ds")}
    expected_rejects = {name: reason for name, (_, reason) in bad.items()}
    expected_rejects.update({"nested/deeper/loop": "symlink-loop", "broken.jpg": "unreadable",
                             "self.jpg": "symlink-loop", "pipe.jpg": "not-a-file"})
    # Two files with the same bytes: one is kept, the other merged into it (ties keep input order).
    expected_rejects["nested/photo-1.jpg"] = "duplicate"  # walked after copy-of-photo-1.jpg
    assert rejects == expected_rejects
    ds = Dataset(str(tmp_path / "ds"))
    rows = {r["source_id"]: r for r in ds.index.to_pylist()}
    assert "copy-of-photo-1.jpg" in rows and rows["copy-of-photo-1.jpg"]["dup_count"] == 1
    for relative, row in rows.items():
        name = relative.rsplit("/", 1)[-1]
        expect = good["photo-1.jpg" if name == "copy-of-photo-1.jpg" else name][1]
        assert {k: row[k] for k in expect} == expect
        assert row["key"] == file_key(relative) and row["title"] == name.rsplit(".", 1)[0]
    assert manifest["curation"]["counts"]["items"] == len(rows) + len(rejects)
    assert verify_dataset(str(tmp_path / "ds"), deep=True).ok


def test_filters_max_aspect_and_max_bytes(tmp_path, corpus):
    good, _ = corpus
    root = tmp_path / "in"
    root.mkdir()
    (root / "wide.jpg").write_bytes(good["photo-0.jpg"][0])  # 480x320: aspect 1.5
    (root / "square.png").write_bytes(good["photo.png"][0])  # 320x320
    (root / "big.png").write_bytes(good["opaque-alpha.png"][0])
    config = fast_config(max_aspect=1.2)
    worker = config.worker.__class__(**{**config.worker.__dict__,
                                        "fetch": config.worker.fetch.__class__(max_bytes=len(good["photo.png"][0]) + 1)})
    config = config.__class__(**{**config.__dict__, "worker": worker})
    curate(FolderSource(str(root)), tmp_path / "ds", config, InlineEngine())
    rejects = {r["source_id"]: r["reason"] for r in rejects_of(tmp_path / "ds")}
    assert rejects == {"wide.jpg": "bad-aspect", "big.png": "too-large"}
    assert Dataset(str(tmp_path / "ds")).index["source_id"].to_pylist() == ["square.png"]


def test_not_our_folder_is_refused(tmp_path, corpus):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(corpus[0]["photo-0.jpg"][0])
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("precious")
    with pytest.raises(DatasetError, match="not empty"):
        curate(FolderSource(str(tmp_path / "in")), tmp_path / "busy", fast_config(), InlineEngine())
    assert (tmp_path / "busy" / "thesis.tex").read_text() == "precious"
