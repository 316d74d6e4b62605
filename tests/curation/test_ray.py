"""The Ray path with real Ray: slices run as tasks in worker processes, progress comes back
through the actor, and the dataset is the one the inline engine makes."""

import pytest

from curation.engine import InlineEngine, RayEngine
from curation.entry import curate
from curation.pipeline import Events
from curation.sources.urllist import UrlListSource
from shards.tools.verify import verify_dataset

from .helpers import fast_config, snapshot, url_rows, write_csv

pytestmark = pytest.mark.ray


class Recorder(Events):
    def __init__(self):
        self.items = self.kept = 0

    def advance(self, delta):
        self.items += delta.get("items", 0)
        self.kept += delta.get("kept", 0)


def test_ray_run_equals_the_inline_run(ray_session, tmp_path, image_server, corpus, refused_url):
    rows, kept, _ = url_rows(image_server, corpus, refused_url)
    source = UrlListSource(str(write_csv(tmp_path / "urls.csv", rows)), "url",
                           {"license": "license", "owner": "owner", "title": "title"})
    engine = RayEngine()
    assert engine.workers == 2 and not engine._owned  # joined the session's Ray
    events = Recorder()
    manifest = curate(source, tmp_path / "ray", fast_config(), engine, events=events)
    engine.close()
    assert ray_session.is_initialized()
    assert manifest["num_samples"] == len(kept) and events.items == len(rows)
    assert events.kept == len(kept) + 2  # before dedup: the repeated URL and the flaky copy
    assert verify_dataset(str(tmp_path / "ray"), deep=True).ok
    curate(source, tmp_path / "inline", fast_config(), InlineEngine())
    assert snapshot(tmp_path / "ray") == snapshot(tmp_path / "inline")


def test_a_cluster_job_ships_the_packages_that_slices_import():
    from pathlib import Path

    from curation.cluster import shipped_packages

    env = shipped_packages()
    assert [Path(d).name for d in env["py_modules"]] == ["plumbing", "shards", "curation"]  # never training (torch)
    assert {"__pycache__/", "*.py[cod]"} <= set(env["excludes"])


def test_ray_installed_ships_nothing(monkeypatch):
    import curation.engine
    from curation.cli import build_parser, make_engine

    made = []
    monkeypatch.setattr(curation.engine, "RayEngine", lambda address, **kw: made.append((address, kw)))
    for extra in ([], ["--ray-installed"]):
        make_engine(build_parser().parse_args(["urls", "l.txt", "--out", "o", "--ray-address", "h:1", *extra]))
    assert [(address, kw["ship"]) for address, kw in made] == [("h:1", True), ("h:1", False)]
