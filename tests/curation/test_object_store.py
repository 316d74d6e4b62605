"""`--out s3://...` against a real S3 API on 127.0.0.1 (moto's server): a curation that equals
the local one, read back by inspection, `verify --deep` and the training loader; an upload
killed mid-way that leaves nothing partial; the refusals; and no credential in any output."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest

from curation.cli import main as curate_main
from shards.tools.cli import main as shards_main
from tests.s3server import ACCESS_KEY, SECRET_KEY, subprocess_env

from .corpus import jpeg
from .helpers import snapshot

REPO = Path(__file__).resolve().parents[2]


def image_folder(folder: Path, n: int = 12) -> Path:
    folder.mkdir()
    for i in range(n):
        (folder / f"img-{i:02d}.jpg").write_bytes(jpeg(i))
    return folder


def objects(bucket: str) -> dict[str, bytes]:
    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    return {name: fs.cat_file(name) for name in fs.find(bucket)}


def no_secret_in(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        assert SECRET_KEY.encode() not in data and ACCESS_KEY.encode() not in data


def files_under(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in folder.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_curation_to_s3_equals_the_local_one_and_reads_back_everywhere(s3, tmp_path, capfd):
    _, bucket = s3
    images = image_folder(tmp_path / "images")
    url = f"s3://{bucket}/ds"
    common = ["--no-ray", "--slice-size", "4", "--max-bytes", "100KB", "--shard-size", "200KB"]
    assert curate_main(["folder", str(images), "--out", url, "--scratch", str(tmp_path / "scratch"), *common]) == 0
    assert curate_main(["folder", str(images), "--out", str(tmp_path / "local"), *common]) == 0
    stored = objects(bucket)
    names = sorted(name.removeprefix(f"{bucket}/ds/") for name in stored)
    local_files = sorted(p.relative_to(tmp_path / "local").as_posix() for p in (tmp_path / "local").rglob("*")
                         if p.is_file() and "staging" not in p.parts)
    assert names == local_files  # the dataset and its records, no staging left behind
    assert not any((tmp_path / "scratch").iterdir())  # the mirror goes once published
    fsspec.filesystem("s3").get(f"{bucket}/ds", str(tmp_path / "down"), recursive=True)
    assert snapshot(tmp_path / "down") == snapshot(tmp_path / "local")
    for shard in (tmp_path / "local" / "shards").iterdir():  # shards byte-identical to the local run's
        assert stored[f"{bucket}/ds/shards/{shard.name}"] == shard.read_bytes()

    # Inspection, deep verification and subsets read the URL.
    key = snapshot(tmp_path / "local")["rows"][0]["key"]
    for args in (["info", url], ["ls", url], ["verify", "--deep", url], ["show", url, key, "-o", str(tmp_path / "one")],
                 ["subset", url, str(tmp_path / "sub"), "--min-side", "1"]):
        assert shards_main(args) == 0, args
    assert shards_main(["verify", "--deep", str(tmp_path / "sub")]) == 0

    # The training loader streams it: one pass gives every sample once.
    from training.loader.pipeline import LoaderConfig, PatchLoader
    from training.loader.sampler import StreamConfig

    loader = PatchLoader(LoaderConfig(url, StreamConfig(size=16, patches_per_image=1), batch_size=4,
                                      resampled=False, shuffle_buffer=0, shuffle_initial=0))
    seen = sorted(k for batch in loader for k in batch.key)
    assert seen == sorted(row["key"] for row in snapshot(tmp_path / "local")["rows"])

    # A rerun finds the published dataset and changes nothing; status reads it.
    assert curate_main(["folder", str(images), "--out", url, "--scratch", str(tmp_path / "scratch"), *common]) == 0
    assert objects(bucket) == stored
    runs = capfd.readouterr()
    assert curate_main(["status", url, "--json"]) == 0
    status = capfd.readouterr()
    report = json.loads(status.out)
    assert report["state"] == "complete" and report["num_samples"] == len(snapshot(tmp_path / "local")["rows"])
    no_secret_in(runs.out, runs.err, status.out, status.err, *stored.values(), *files_under(tmp_path))


@pytest.mark.slow
def test_a_killed_upload_leaves_nothing_partial_and_a_rerun_completes_it(s3, tmp_path, capsys):
    server, bucket = s3
    images = image_folder(tmp_path / "images")
    url = f"s3://{bucket}/ds"
    command = [sys.executable, "-m", "curation.cli", "folder", str(images), "--out", url, "--no-ray",
               "--scratch", str(tmp_path / "scratch"), "--max-bytes", "100KB", "--shard-size", "200KB"]
    env = subprocess_env(server)
    server.slow_puts = (r"/ds/shards/shard-", 0.4)  # the server waits before reading each shard's body
    with open(tmp_path / "log1", "wb") as log:
        run = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        try:
            deadline = time.monotonic() + 120
            while not any(name.startswith(f"{bucket}/ds/shards/") for name in objects(bucket)):
                assert run.poll() is None and time.monotonic() < deadline, (tmp_path / "log1").read_text()
                time.sleep(0.05)
            os.kill(run.pid, signal.SIGKILL)  # with the next shard's upload in flight
        finally:
            run.kill()
            run.wait()
    server.slow_puts = None
    at_kill = objects(bucket)
    assert f"{bucket}/ds/dataset.json" not in at_kill and f"{bucket}/ds/index.parquet" not in at_kill
    shards_at_kill = {name: data for name, data in at_kill.items() if name.startswith(f"{bucket}/ds/shards/")}
    assert shards_at_kill
    assert curate_main(["status", url, "--scratch", str(tmp_path / "scratch"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "uploading"

    # What a kill inside a large shard's multipart upload leaves: parts, no object. The rerun
    # aborts it (S3 bills such parts until then); another prefix's upload is not ours to touch.
    client = fsspec.filesystem("s3")
    for key in ("ds/shards/shard-000009.tar", "other/big.tar"):
        client.call_s3("create_multipart_upload", Bucket=bucket, Key=key)
    rerun = subprocess.run(command, capture_output=True, env=env, cwd=REPO, timeout=180)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    final = objects(bucket)
    manifest_shards = json.loads(final[f"{bucket}/ds/dataset.json"])["shards"]
    assert len(manifest_shards) > len(shards_at_kill)  # the kill did land mid-way
    for name, data in shards_at_kill.items():  # every object seen under a final name was whole
        assert data == final[name]
    for shard in manifest_shards:
        assert hashlib.sha256(final[f"{bucket}/ds/{shard['name']}"]).hexdigest() == shard["sha256"]
    assert shards_main(["verify", "--deep", url]) == 0
    assert [u["Key"] for u in client.list_multipart_uploads(bucket)] == ["other/big.tar"]
    no_secret_in((tmp_path / "log1").read_bytes(), rerun.stdout, rerun.stderr)


def test_urls_that_cannot_or_must_not_be_written_are_one_line(s3, tmp_path, capsys):
    _, bucket = s3
    images = image_folder(tmp_path / "images", n=1)
    fsspec.filesystem("s3").pipe_file(f"{bucket}/theirs/notes.txt", b"someone else's")
    cases = [
        ("http://127.0.0.1:9/ds", [], "read-only"),
        (f"s3://{ACCESS_KEY}:{SECRET_KEY}@{bucket}/ds", [], "credentials in it"),
        (f"s3://{bucket}/theirs", [], "not empty"),
        (f"s3://{bucket}/ds", ["--add"], "--add needs a local --out"),
        ("s3://no-such-bucket-anyres/ds", [], "no-such-bucket-anyres"),
        ("s3://", [], "must name a bucket"),
        (f"s3://{bucket}/../elsewhere", [], "must name a bucket"),
        ("memory://ds", [], "keeps nothing"),
        ("zzz://ds", [], "cannot open zzz://ds"),
    ]
    for url, extra, message in cases:
        assert curate_main(["folder", str(images), "--out", url, "--no-ray", "--scratch", str(tmp_path / "s"),
                            *extra]) == 2, url
        out, err = capsys.readouterr()
        assert message in err and len(err.strip().splitlines()) == 1, (url, err)
        no_secret_in(out, err)
    assert objects(bucket) == {f"{bucket}/theirs/notes.txt": b"someone else's"}


def test_a_slice_commits_by_its_marker_and_an_attempt_without_one_is_never_read(s3, tmp_path):
    from curation.fetch import Slice, WorkerConfig, run_slice
    from curation.remote import RemoteFolder
    from curation.sources.folder import FolderSource
    from curation.workdir import WorkDir
    from shards import Dataset

    _, bucket = s3
    source = FolderSource(str(image_folder(tmp_path / "images", n=3)))
    staging = RemoteFolder.parse(f"s3://{bucket}/ds/work/staging")
    work = WorkDir.mirroring(tmp_path / "mirror", staging)
    task = Slice(0, tuple(source.items()))
    staging.put_bytes("slice-000000/0badc0ffee00/index.parquet", b"a killed attempt: no marker")
    assert work.done(0) is None
    assert run_slice(work, task, source, WorkerConfig())["kept"] == 3
    marker = work.done(0)
    assert marker["attempt"] != "0badc0ffee00" and marker["kept"] == 3
    assert not list(tmp_path.glob("mirror/work/staging/*"))  # committed at the URL only
    work.pull(range(1))  # its records come down; its samples stay at the URL, read from there
    assert not (work.slice(0) / "shards").exists() and work.slice_samples(0).startswith("s3://")
    assert sorted(s.meta.key for s in Dataset(work.slice_samples(0)).iter_samples()) == \
        sorted(item.key for item in task.items)
    assert run_slice(work, task, source, WorkerConfig())["kept"] == 3  # committed: not fetched again
    assert len([n for n in objects(bucket) if n.endswith("slice-000000/done.json")]) == 1  # one commit
