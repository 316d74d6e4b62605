"""The slice store's contract (`curation.store`), kept alike by both stores: a folder that commits
by rename and a URL (the tests' S3 server) that commits by a marker object. Fetch and the work
folder call only this interface, so what passes here holds for a run into either."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from curation.fetch import Slice, WorkerConfig, run_slice
from curation.remote import RemoteFolder
from curation.sources.folder import FolderSource
from curation.store import DONE_NAME, LocalSliceStore, SliceStore, UrlSliceStore
from curation.workdir import WorkDir
from shards import Dataset

from .corpus import jpeg


@pytest.fixture(params=["folder", "url"])
def work(request, tmp_path) -> WorkDir:
    """A work folder whose slices commit through each store in turn."""
    if request.param == "folder":
        return WorkDir(tmp_path / "ds" / "work")
    _, bucket = request.getfixturevalue("s3")
    return WorkDir.mirroring(tmp_path / "mirror", RemoteFolder.parse(f"s3://{bucket}/ds/work/staging"))


def image_source(folder: Path, n: int) -> FolderSource:
    folder.mkdir()
    for i in range(n):
        (folder / f"img-{i:02d}.jpg").write_bytes(jpeg(i))
    return FolderSource(str(folder))


def test_a_slice_is_invisible_until_committed_and_then_read_back_whole(work, tmp_path):
    store: SliceStore = work.store
    source = image_source(tmp_path / "images", 3)
    task = Slice(0, tuple(source.items()))
    assert store.done(0) is None and list(store.finished()) == []
    # An attempt written but never committed (a killed task) is never read.
    part = store.begin(0)
    part.mkdir(parents=True, exist_ok=True)
    (part / DONE_NAME).write_text("{}")
    assert store.done(0) is None and list(store.finished()) == []
    other = store.begin(0)
    assert other != part  # each attempt writes a folder of its own
    shutil.rmtree(other, ignore_errors=True)

    done = run_slice(work, task, source, WorkerConfig())
    assert done["kept"] == 3 and store.done(0)["kept"] == 3
    assert [d["slice"] for d in store.finished()] == [0]
    store.gather(range(1))
    assert (store.records(0) / "index.parquet").is_file() and (store.records(0) / "rejects.parquet").is_file()
    keys = sorted(s.meta.key for s in Dataset(store.samples(0)).iter_samples())
    assert keys == sorted(item.key for item in task.items)
    assert [d["slice"] for d in store.finished()] == [0]  # pulled or not, each slice once

    # Committed: a rerun returns the record and fetches nothing (the files are gone).
    for image in (tmp_path / "images").iterdir():
        image.unlink()
    assert run_slice(work, task, source, WorkerConfig())["kept"] == 3

    # Unfinished attempts left on this machine go; the committed slice stays.
    store.clear_parts()
    assert not part.exists() or not part.is_relative_to(work.root)  # a URL's attempts stage in /tmp
    assert store.done(0)["kept"] == 3
    shutil.rmtree(part, ignore_errors=True)


def test_the_store_travels_to_workers_and_keeps_the_records_after_the_samples_go(work, tmp_path):
    source = image_source(tmp_path / "images", 2)
    run_slice(work, Slice(0, tuple(source.items())), source, WorkerConfig())
    travelled = pickle.loads(pickle.dumps(work))
    assert travelled.store.done(0)["kept"] == 2  # what a slice task on another node sees
    work.pull(range(1))
    work.drop_staged_bytes(range(1))
    assert work.done(0)["kept"] == 2 and (work.slice(0) / "index.parquet").is_file()


def test_each_store_commits_its_own_way(tmp_path, s3):
    _, bucket = s3
    source = image_source(tmp_path / "images", 1)
    task = Slice(0, tuple(source.items()))
    local = WorkDir(tmp_path / "ds" / "work")
    assert isinstance(local.store, LocalSliceStore)
    run_slice(local, task, source, WorkerConfig())
    assert sorted(p.name for p in (local.root / "staging").iterdir()) == ["slice-000000"]  # renamed in place

    at_url = WorkDir.mirroring(tmp_path / "mirror", RemoteFolder.parse(f"s3://{bucket}/ds/work/staging"))
    assert isinstance(at_url.store, UrlSliceStore)
    run_slice(at_url, task, source, WorkerConfig())
    marker = at_url.done(0)
    assert marker["attempt"].isalnum() and not (tmp_path / "mirror").exists()  # committed at the URL only
    at_url.pull(range(1))
    assert not (at_url.slice(0) / "shards").exists()  # the samples stay at the URL and are read there
    assert at_url.slice_samples(0) == f"s3://{bucket}/ds/work/staging/slice-000000/{marker['attempt']}"
