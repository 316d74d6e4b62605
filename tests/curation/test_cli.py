"""`anyres-curate` as a person runs it: a summary at the end, `status`, and bad calls that end
in one line and exit code 2."""

import re
import socket
import subprocess
import sys
import time

import pytest

CURATE = [sys.executable, "-m", "curation.cli"]
SHARDS = [sys.executable, "-m", "shards.tools.cli"]


def run(cmd, *args):
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def photo_dir(tmp_path, corpus):
    folder = tmp_path / "in"
    folder.mkdir()
    good, bad = corpus
    for name in ("photo-0.jpg", "photo-1.jpg", "orient-6.jpg"):
        (folder / name).write_bytes(good[name][0])
    (folder / "cmyk.jpg").write_bytes(bad["cmyk.jpg"][0])
    return folder


def test_folder_run_prints_a_summary_and_passes_verify_deep(tmp_path, photo_dir):
    out = tmp_path / "ds"
    result = run(CURATE, "folder", photo_dir, "--out", out, "--no-ray", "--name", "three")
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stdout and "unsupported-mode" in result.stdout and "wrote 3 samples" in result.stdout
    verify = run(SHARDS, "verify", out, "--deep")
    assert verify.returncode == 0 and "OK: 3 samples" in verify.stdout
    status = run(CURATE, "status", out)
    assert status.returncode == 0 and "complete" in status.stdout
    again = run(CURATE, "folder", photo_dir, "--out", out, "--no-ray", "--name", "three")
    assert again.returncode == 0 and "wrote 3 samples" in again.stdout


def test_folder_run_takes_licences_and_owners_from_an_attribution_csv(tmp_path, photo_dir):
    csv = tmp_path / "credits.csv"
    csv.write_text("path,license,license_url,owner\n"
                   "photo-0.jpg,cc-by-4.0,https://creativecommons.org/licenses/by/4.0/,Ada Lovelace\n")
    out = tmp_path / "ds"
    result = run(CURATE, "folder", photo_dir, "--out", out, "--no-ray", "--attribution", csv)
    assert result.returncode == 0, result.stderr
    listing = run(SHARDS, "ls", out).stdout
    assert "cc-by-4.0" in listing and listing.count("\n") == 3  # one line per sample, one with a licence
    bad = tmp_path / "bad.csv"
    bad.write_text("file,licence\nphoto-0.jpg,x\n")
    refused = run(CURATE, "folder", photo_dir, "--out", tmp_path / "other", "--no-ray", "--attribution", bad)
    assert refused.returncode == 2 and "needs a 'path' column" in refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr


def unused_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize("args, message", [
    (["folder", "/no/such/folder", "--out", "{tmp}/o"], "not a folder: /no/such/folder"),
    (["urls", "/no/such/list.txt", "--out", "{tmp}/o"], "no such file: /no/such/list.txt"),
    (["urls", "{in}/photo-0.jpg", "--out", "{tmp}/o"], "unknown list format"),
    (["folder", "{in}", "--out", "{in}"], "not empty"),
    (["folder", "{in}", "--out", "{tmp}/o", "--ray-address", "127.0.0.1:{port}"], "cannot reach Ray at 127.0.0.1"),
    (["folder", "{in}", "--out", "{tmp}/o", "--ray-address", "nonsense"], "is not HOST:PORT"),
    (["status", "{tmp}/nothing"], "no anyres-curate run"),
    (["folder", "{in}", "--out", "{tmp}/o", "--shard-size", "1MB"], "cannot hold a file of the largest size"),
])
def test_bad_calls_are_one_line_and_exit_2(tmp_path, photo_dir, args, message):
    args = [a.format(tmp=tmp_path, port=unused_port(), **{"in": photo_dir}) for a in args]
    start = time.monotonic()
    result = run(CURATE, *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("anyres-curate: error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr and time.monotonic() - start < 30


@pytest.mark.parametrize("flag", [["--min-side", "0"], ["--max-bytes", "lots"], ["--threads", "x"],
                                  ["--max-aspect", "0.5"], ["--frobnicate"]])
def test_bad_flags_exit_2_without_a_traceback(tmp_path, photo_dir, flag):
    result = run(CURATE, "folder", photo_dir, "--out", tmp_path / "o", *flag)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.match(r"anyres-curate( folder)?: error: ", result.stderr.strip().splitlines()[-1])
