"""Back-to-back runs of the installed `anyres-shards ls` and `info`, output piped: every one exits 0.

A script that pipes `ls` into other tools must never see a random failure. Such runs once
aborted at exit (134, "terminate called without an active exception") a few times in a
hundred under load: an Arrow worker thread released the index's Python bytes after the
interpreter had begun to exit (see shards.format.index._arrow_owned). Only many runs show such a race,
so the runs go a few at a time, which also loads the machine as it was when the aborts were
seen. The suite runs 20 of each; the stress run is `ANYRES_EXIT_RUNS=1000 pytest
tests/shards/test_exit_status.py` (the race showed a few times in a hundred runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.factories import make_dataset

pytestmark = pytest.mark.slow

RUNS = int(os.environ.get("ANYRES_EXIT_RUNS", "20"))
EARLY_CLOSE_RUNS = max(1, RUNS // 2)
PARALLEL = 4
COMMAND = str(Path(sys.executable).with_name("anyres-shards"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("exit") / "ds"
    make_dataset(root, n=15)
    return root


def read_fully(args: list[str]) -> tuple[int, bytes, bytes]:
    proc = subprocess.run([COMMAND, *args], capture_output=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def close_at_once(args: list[str]) -> tuple[int, bytes, bytes]:
    # The reader goes away before the command writes a byte (`ls | head -0`, a crashed
    # consumer): its first write fails with EPIPE, which is still a normal exit.
    proc = subprocess.Popen([COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read()
    return proc.wait(timeout=120), b"", err


def run_many(run, args: list[str], times: int) -> list[tuple[int, bytes, bytes]]:
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(lambda _: run(args), range(times)))


def failures(results: list[tuple[int, bytes, bytes]]) -> list[tuple[int, str]]:
    return [(code, err.decode(errors="replace")[-300:]) for code, _, err in results if code != 0 or err]


@pytest.mark.parametrize("command", [["ls"], ["info"]], ids=["ls", "info"])
def test_piped_runs_all_exit_0(dataset, command):
    results = run_many(read_fully, [*command, str(dataset)], RUNS)
    assert failures(results) == []
    outputs = {out for _, out, _ in results}
    assert len(outputs) == 1  # the same output every time, complete
    if command == ["ls"]:
        assert len(outputs.pop().splitlines()) == 15


@pytest.mark.parametrize("command", [["ls"], ["info"], ["info", "--json"]], ids=["ls", "info", "info-json"])
def test_a_reader_that_closes_early_still_gives_exit_0(dataset, command):
    results = run_many(close_at_once, [*command, str(dataset)], EARLY_CLOSE_RUNS)
    assert failures(results) == []


def test_head_in_a_shell_pipeline(dataset):
    # The user's form: with pipefail, the pipeline fails if `ls` fails.
    script = f"set -o pipefail; {COMMAND} ls {dataset} | head -1"
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.count("\n") == 1
