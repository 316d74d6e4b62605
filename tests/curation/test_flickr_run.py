"""Whole Flickr runs against the fake: the right photos downloaded once each through the
pipeline's fetch step (inline and on Ray), every sample with full attribution, rejects with
reasons for what was skipped before download, `verify --deep` passing; from the command line, an
interrupted run resuming without fetching anything twice, bad calls ending in one line, and the
key and secret nowhere in the output."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curation.engine import InlineEngine, RayEngine
from curation.entry import curate
from curation.sources.flickr.api import ApiConfig, Credentials
from curation.sources.flickr.discovery import SearchQuery
from curation.sources.flickr.licenses import REUSE
from curation.sources.flickr.source import FlickrIdsSource, FlickrSource
from shards import Dataset
from shards.tools.verify import verify_dataset

from .fake_flickr import KEY, SECRET, FakeFlickr, FakePhoto, day
from .helpers import fast_config, rejects_of, snapshot

CURATE = [sys.executable, "-m", "curation.cli"]
SHARDS = [sys.executable, "-m", "shards.tools.cli"]


def catalogue() -> list[FakePhoto]:
    """Photos over a few weeks: usable ones under several reuse licences, one whose owner allows
    no original, one with a small original, and two the licence filter must keep out."""
    start = day(2021, 6, 1)
    photos = [FakePhoto(str(7000 + i), start + i * 2 * 86400 + 3600 * i, license=lic, seed=i,
                        title=f"mountain {i}", ownername=f"owner {i}", taken=f"2021-05-{10 + i:02d} 08:00:00")
              for i, lic in enumerate([4, 5, 9, 10, 11, 12, 7, 8, 4, 5])]
    photos += [FakePhoto("7100", start + 5 * 86400, license=4, seed=10, sizes={"l": (400, 300), "z": (320, 240)}),
               FakePhoto("7101", start + 7 * 86400, license=4, seed=11, sizes={"o": (240, 180)}),
               FakePhoto("7102", start + 9 * 86400, license=0, seed=12),
               FakePhoto("7103", start + 11 * 86400, license=2, seed=13)]
    return photos


QUERY = dict(text="mountain", min_upload_date=day(2021, 6, 1), max_upload_date=day(2021, 7, 1), per_page=2,
             result_cap=4)


@pytest.fixture
def fake():
    server = FakeFlickr(catalogue(), cap=4)
    yield server
    server.stop()


def search_source(fake, out: Path, **kw) -> FlickrSource:
    return FlickrSource(query=SearchQuery(**QUERY), api=ApiConfig(endpoint=fake.endpoint, calls_per_hour=3.6e7),
                        credentials=Credentials(KEY, SECRET), state=str(out / "work" / "flickr"), min_side=256, **kw)


def check_attribution(out: Path, fake) -> dict:
    samples = {s.meta.key: s.meta for s in Dataset(str(out)).iter_samples()}
    for key, meta in samples.items():
        photo = fake.by_id[meta.source_id]
        assert key == f"flickr-{photo.id}" and meta.source == "flickr"
        assert meta.url == f"https://www.flickr.com/photos/ansel/{photo.id}/"
        assert meta.owner == photo.ownername and meta.title == photo.title and meta.date_taken == photo.taken
        assert meta.license in {"cc-by-2.0", "cc-by-sa-2.0", "cc0-1.0", "pdm-1.0", "cc-by-4.0", "cc-by-sa-4.0",
                                "no-known-copyright-restrictions", "us-government-work"}
        assert meta.license_url.startswith("http")
        taken = meta.extra["flickr"]
        code = "o" if "o" in photo.sizes else "l"
        assert (taken["photo_id"], taken["size"], taken["owner_nsid"]) == (photo.id, code, photo.owner)
        assert (meta.width, meta.height) == photo.sizes[code] == (taken["size_width"], taken["size_height"])
        assert taken["download_url"] == fake.image_url(photo, code)
    return samples


def test_a_search_run_makes_a_fully_attributed_dataset(fake, tmp_path):
    out = tmp_path / "ds"
    manifest = curate(search_source(fake, out), out, fast_config(slice_size=3, min_side=256), InlineEngine())
    samples = check_attribution(out, fake)
    assert set(samples) == {f"flickr-{7000 + i}" for i in range(10)} | {"flickr-7100"}
    assert samples["flickr-7100"].extra["flickr"]["size_label"] == "Large"  # no original: the largest listed
    assert [(r["key"], r["reason"]) for r in rejects_of(out)] == [("flickr-7101", "too-small")]
    assert verify_dataset(str(out), deep=True).ok
    # Each photo downloaded once, at the chosen size; the small original never.
    assert set(fake.image_hits.values()) == {1} and len(fake.image_hits) == 11
    assert not any(name.startswith("7101") for name in fake.image_hits)
    # Discovery bisected (the cap is 4) and made no call but searches.
    assert {c["method"] for c in fake.calls} == {"flickr.photos.search"}
    cursor = json.loads((out / "work" / "flickr" / "cursor.json").read_text())
    assert cursor["bisected"] > 0 and all(total <= 4 for *_, total, _ in cursor["windows"])
    described = manifest["curation"]["sources"][0]
    assert described["method"] == "search" and described["licenses"] == ["cc-by-2.0", "cc-by-sa-2.0",
        "no-known-copyright-restrictions", "us-government-work", "cc0-1.0", "pdm-1.0", "cc-by-4.0", "cc-by-sa-4.0"]


@pytest.mark.ray
def test_the_fetch_step_runs_on_ray_with_no_credentials_shipped(ray_session, fake, tmp_path):
    from ray import cloudpickle

    source = search_source(fake, tmp_path / "ray")
    shipped = cloudpickle.dumps(source)  # how Ray sends the source with each slice
    assert KEY.encode() not in shipped and SECRET.encode() not in shipped
    engine = RayEngine()
    curate(source, tmp_path / "ray", fast_config(slice_size=3, min_side=256), engine)
    engine.close()
    curate(search_source(fake, tmp_path / "inline"), tmp_path / "inline", fast_config(slice_size=3, min_side=256),
           InlineEngine())
    assert snapshot(tmp_path / "ray") == snapshot(tmp_path / "inline")
    check_attribution(tmp_path / "ray", fake)


def test_a_list_of_ids_in_the_papers_format(fake, tmp_path):
    listing = tmp_path / "flickr_mountains_HR.txt"
    listing.write_text("4_7000.jpg\n5_7001.jpg\n4_7100.jpg\n4_7101.jpg\n0_7102.jpg\n0_424242.jpg\n")
    out = tmp_path / "ids"
    source = FlickrIdsSource(api=ApiConfig(endpoint=fake.endpoint, calls_per_hour=3.6e7),
                             credentials=Credentials(KEY, SECRET), state=str(out / "work" / "flickr"), min_side=256,
                             path=str(listing), licenses=REUSE)
    curate(source, out, fast_config(slice_size=2, min_side=256), InlineEngine())
    assert set(check_attribution(out, fake)) == {"flickr-7000", "flickr-7001", "flickr-7100"}
    assert sorted((r["key"], r["reason"]) for r in rejects_of(out)) == [
        ("flickr-424242", "flickr-not-found"), ("flickr-7101", "too-small"), ("flickr-7102", "license-not-allowed")]
    assert verify_dataset(str(out), deep=True).ok
    assert len(fake.methods("flickr.photos.getSizes")) == 4  # not for the reserved or the missing photo


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args, env=None):
    return subprocess.run(CURATE + [str(a) for a in args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FLICKR_API_KEY": KEY, "FLICKR_API_SECRET": SECRET, **(env or {})})


def cli_args(fake, out):
    return ["flickr", "--text", "mountain", "--min-upload-date", "2021-06-01", "--max-upload-date", "2021-06-30",
            "--per-page", "2", "--result-cap", "4", "--endpoint", fake.endpoint, "--out", out, "--no-ray",
            "--slice-size", "2", "--min-side", "256", "--timeout", "5", "--retries", "0", "--shard-size", "3MB",
            "--max-bytes", "2MB", "--api-retries", "1", "--api-backoff", "0.01", "--calls-per-hour", "36000000"]


def committed(out: Path) -> list[int]:
    return sorted(int(p.parent.name.split("-")[1]) for p in (out / "work" / "staging").glob("slice-*/done.json"))


@pytest.mark.slow  # more than a few seconds
def test_an_interrupted_cli_run_resumes_and_the_key_never_shows(fake, tmp_path):
    clean = tmp_path / "clean"
    first = run(*cli_args(fake, clean))
    assert first.returncode == 0, first.stderr
    assert "wrote 11 samples" in first.stdout

    # The API goes down part-way: the run stops with one line, its progress saved.
    out = tmp_path / "resumed"
    fake.calls.clear()
    fake.image_hits.clear()
    fake.fail_after = fake.answered + 1 + 6  # the key check, then six search pages
    broken = run(*cli_args(fake, out))
    assert broken.returncode == 2, broken.stderr
    assert broken.stderr.strip().splitlines()[-1].startswith("anyres-curate: error: Flickr API unavailable")
    assert "rerun the same command to resume" in broken.stderr and "Traceback" not in broken.stderr
    done = committed(out)
    assert done and not (out / "dataset.json").exists()
    report = json.loads(run("status", out, "--json").stdout)
    assert report["state"] == "fetching" and report["slices_done"] == len(done)
    assert not report["flickr"][0]["done"] and report["flickr"][0]["windows_left"] > 0
    pages_before = {(c["params"]["min_upload_date"], c["params"]["max_upload_date"], c["params"]["page"])
                    for c in fake.methods("flickr.photos.search")}
    fetched_before = set(fake.image_hits)
    staged_keys = set()
    for number in done:
        staged_keys |= {s.meta.key for s in Dataset(str(out / "work" / "staging" / f"slice-{number:06d}")).iter_samples()}

    fake.fail_after = None
    fake.calls.clear()
    fake.image_hits.clear()
    second = run(*cli_args(fake, out))
    assert second.returncode == 0, second.stderr
    assert snapshot(out) == snapshot(clean)
    pages_after = {(c["params"]["min_upload_date"], c["params"]["max_upload_date"], c["params"]["page"])
                   for c in fake.methods("flickr.photos.search")}
    assert not pages_before & pages_after  # discovery went on from its cursor
    refetched = {name.split("_")[0] for name in fake.image_hits}
    assert staged_keys and not {f"flickr-{i}" for i in refetched} & staged_keys  # committed slices not fetched again
    # Inline, a slice goes out only once discovery filled it: nothing was in flight at the failure.
    assert fetched_before.isdisjoint(fake.image_hits) and len(fetched_before | set(fake.image_hits)) == 11

    verify = subprocess.run(SHARDS + ["verify", str(out), "--deep"], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and "OK: 11 samples" in verify.stdout
    status = run("status", out)
    assert status.returncode == 0 and "complete" in status.stdout and "done: 12 photos" in status.stdout

    # The key and the secret are nowhere: not in the datasets, the work folders, the output.
    for folder in (clean, out):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert KEY.encode() not in data and SECRET.encode() not in data, path
    for result in (first, broken, second, status):
        assert KEY not in result.stdout + result.stderr and SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("args, env, message", [
    ([], {"FLICKR_API_KEY": ""}, "no Flickr API key and secret in FLICKR_API_KEY and FLICKR_API_SECRET"),
    ([], {"FLICKR_API_KEY": "wrong-key-1234"}, "Flickr refused the API key and secret: Invalid API Key"),
    ([], {"FLICKR_API_SECRET": "wrong-secret-5678"}, "Invalid signature (error 96)"),
    (["--credentials", "{tmp}/missing.txt"], {}, "cannot read the credentials file"),
    (["--text", ""], {}, "give --text or --tags"),
    (["--endpoint", "{base}/services/"], {}, "does not answer like the Flickr API (flickr.photos.licenses.getInfo: HTTP 404)"),
    (["--endpoint", "http://127.0.0.1:{port}/services/rest/"], {}, "Flickr API unavailable: ConnectionError"),
    (["--endpoint", "api.flickr.com/services/rest/"], {}, "is not an http(s) URL"),
])
def test_bad_keys_and_bad_calls_are_one_line_and_exit_2(fake, tmp_path, args, env, message):
    base = cli_args(fake, tmp_path / "o")
    if args[:1] == ["--text"]:
        base[2] = ""
        args = []
    start = time.monotonic()
    result = run(*base, *[a.format(tmp=tmp_path, base=fake.base, port=unused_port()) for a in args], env=env)
    assert time.monotonic() - start < 20
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("anyres-curate: error: ") and message in lines[0], result.stderr
    for secret in (KEY, SECRET, "wrong-key-1234", "wrong-secret-5678"):
        assert secret not in result.stderr + result.stdout
    assert not fake.image_hits


@pytest.mark.parametrize("flag", [["--licenses", "cc-by-zz"], ["--min-upload-date", "2021-13-01"],
                                  ["--calls-per-hour", "0"], ["--tag-mode", "some"]])
def test_bad_flickr_flags_exit_2(fake, tmp_path, flag):
    result = run(*cli_args(fake, tmp_path / "o"), *flag)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("anyres-curate flickr: error: ")
