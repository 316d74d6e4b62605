"""A run killed with SIGKILL in the middle, then rerun, ends with the same dataset as a run that
was never interrupted: same keys, same bytes, nothing lost, nothing twice."""

import os
import signal
import subprocess
import sys
import time

import pytest

from curation.status import status

from .helpers import snapshot

CLI = [sys.executable, "-m", "curation.cli"]
FLAGS = ["--slice-size", "4", "--timeout", "2", "--retries", "0", "--threads", "2", "--shard-size", "3MB",
         "--max-bytes", "2MB", "--min-side", "256"]


def run_cli(args, **kw):
    return subprocess.run(CLI + args, capture_output=True, text=True, timeout=120, **kw)


def staged(out):
    return sorted(p.parent.name for p in (out / "work" / "staging").glob("slice-*/done.json"))


@pytest.mark.parametrize("engine", [["--no-ray"], pytest.param(["--workers", "2"], marks=pytest.mark.ray)],
                         ids=["inline", "ray"])
@pytest.mark.slow  # more than a few seconds
def test_sigkill_then_rerun_gives_the_same_dataset(tmp_path, image_server, corpus, engine):
    good, bad = corpus
    names = list(good) + list(bad)
    urls = [image_server.url(f"img/{n}") for n in names] + [image_server.url("status/404")]
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(urls) + "\n")

    image_server.delay = 0.0
    clean = tmp_path / "clean"
    result = run_cli(["urls", str(listing), "--out", str(clean), *FLAGS, *engine])
    assert result.returncode == 0, result.stderr

    image_server.delay = 0.15  # slow enough to be caught in the middle
    image_server.requests.clear()
    out = tmp_path / "killed"
    proc = subprocess.Popen(CLI + ["urls", str(listing), "--out", str(out), *FLAGS, *engine],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 90
    while len(staged(out)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and anything it started
    proc.wait()
    finished = staged(out)
    assert 2 <= len(finished) < -(-len(urls) // 4), "the kill must land mid-run"
    assert not (out / "dataset.json").exists()
    report = status(out)
    assert report["state"] == "fetching" and report["slices_done"] == len(finished)

    image_server.delay = 0.0
    image_server.requests.clear()
    result = run_cli(["urls", str(listing), "--out", str(out), *FLAGS, *engine])
    assert result.returncode == 0, result.stderr
    # Finished slices were not fetched again: their first URLs got no request.
    refetched = {path for path, _ in image_server.requests}
    for name in finished:
        first_of_slice = int(name.split("-")[1]) * 4
        assert f"/img/{names[first_of_slice]}" not in refetched
    assert snapshot(out) == snapshot(clean)
    keys = snapshot(out)["rows"]
    assert len({r["key"] for r in keys}) == len(keys)
    assert not list((out / "work" / "staging").glob("*.part-*"))
