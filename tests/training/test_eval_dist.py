"""`anyres-eval` on two processes (gloo on 127.0.0.1): the same numbers as one process, bit for
bit, with the real sets split as well as the generated ones; one metrics.jsonl record per result
and one cache file per real set, written by rank 0; and a user error, found by every rank or by
rank 0 alone, ends both ranks with one line and exit code 2, neither left waiting."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shards.format.reader import Dataset
from tests.cli_outcome import one_error_line, run_main
from training.commands.eval import load, main
from training.eval.ranks import Ranks, joined
from training.eval.sources import RealSpec, fake_set, real_set

from .eval_helpers import CountingFeatures, write_snapshots
from .gan_helpers import SUBPROCESS_ENV, gan_dataset

REPO = Path(__file__).resolve().parents[2]
# 16 images or patches in 4 batches of 4: two batches per rank. -n, not --n: torchrun's own
# parser refuses --n (an ambiguous start of its --nnodes and --nproc-per-node).
FAST = ["--metrics", "kid,kid-patch,hf-patch", "--feature-side", "32", "-n", "16", "--batch", "4"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaldist")
    data = gan_dataset(root / "data", n=12)
    return data, write_snapshots(data, root / "run", (0.0,))[0]


def read_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def torchrun(argv: list[str]) -> subprocess.CompletedProcess:
    """The documented launch: torchrun -m training.commands.eval, two processes on the CPU (gloo)."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "training.commands.eval", *argv], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env=SUBPROCESS_ENV)


def two_ranks(argv: list[str], timeout: float = 90) -> list[tuple[int, str, str]]:
    """Two processes joined as torchrun would (its environment variables), without torchrun, so
    that each rank's own exit code and output can be read; a hang fails instead of waiting."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**SUBPROCESS_ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2",
           "LOCAL_WORLD_SIZE": "2"}
    procs = [subprocess.Popen([sys.executable, "-m", "training.commands.eval", *argv], cwd=REPO, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in range(2)]
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
        return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]
    except subprocess.TimeoutExpired:
        pytest.fail("a rank hung")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_blocks_of_batches_cover_a_set_once_and_join_in_its_order():
    for batches, size in ((4, 2), (5, 3), (1, 2), (7, 7)):
        blocks = [Ranks(r, size).block(batches) for r in range(size)]
        assert [b for block in blocks for b in block] == list(range(batches))
        assert max(map(len, blocks)) - min(map(len, blocks)) <= 1
    assert sum(Ranks(r, 3).items(10, 4) for r in range(3)) == 10  # the last batch is short
    parts = [{"f": np.arange(4)}, {}, {"f": np.arange(4, 6)}]  # a rank with no batch gives {}
    assert joined(parts)["f"].tolist() == list(range(6))


@pytest.mark.usefixtures("one_thread")
def test_each_rank_embeds_only_its_block_of_the_one_process_draw(run):
    data, snapshot = run
    g, _, _ = load(snapshot)
    dataset, spec = Dataset(str(data)), RealSpec("patch", 16, 10, 3, 16.0, None)  # 3 batches of 4, 4, 2
    whole = real_set(dataset, spec, CountingFeatures(), 4)
    fakes = fake_set(g, "patch", whole, spec, CountingFeatures(), 4, 3, 16)
    reals, generated = [], []
    for r in range(2):
        counting = CountingFeatures()
        mine = Ranks(r, 2).block(3)
        reals.append(real_set(dataset, spec, counting, 4, batches=mine))
        generated.append(fake_set(g, "patch", whole, spec, counting, 4, 3, 16, batches=mine))
        assert counting.calls == 2 * len(mine)  # its own batches of each set, no other
    for one, parts in ((whole, reals), (fakes, generated)):
        assert one.keys() == joined(parts).keys()
        assert all(np.array_equal(one[k], joined(parts)[k]) for k in one)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")  # as the subprocesses (OMP_NUM_THREADS=1): the same float sums
def test_two_processes_give_one_process_numbers_and_write_once(run, tmp_path, capsys):
    data, snapshot = run
    argv = [str(snapshot), "--data", str(data), *FAST]
    assert run_main(main, [*argv, "--cache", str(tmp_path / "c1"), "--out", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    one = read_rows(tmp_path / "one")
    assert [r["metric"] for r in one] == ["kid-full", "kid-patch", "hf-patch"]

    # Both real sets drawn and embedded in halves, the generated ones made in halves.
    result = torchrun([*argv, "--cache", str(tmp_path / "c2"), "--out", str(tmp_path / "two")])
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_rows(tmp_path / "two") == one  # every value, KID's spread too, exactly
    assert result.stdout.count("appended 3 results") == 1  # rank 0 alone prints
    assert "error" not in result.stderr.lower() and "Traceback" not in result.stderr
    files = sorted(p.name for p in (tmp_path / "c2").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "c1").iterdir()) and len(files) == 2
    for name in files:  # rank 0's cache files hold the one-process arrays
        with np.load(tmp_path / "c1" / name) as a, np.load(tmp_path / "c2" / name) as b:
            assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files), name

    # From the cache: rank 0 reads, every rank gets its arrays, nothing is rewritten.
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "c2").iterdir()}
    result = torchrun([*argv, "--cache", str(tmp_path / "c2"), "--out", str(tmp_path / "two")])
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_rows(tmp_path / "two") == one + one
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "c2").iterdir()} == stamps


@pytest.mark.slow
@pytest.mark.parametrize("case", ["garbage snapshot", "unwritable output"])
def test_a_user_error_ends_both_ranks_with_one_line_and_exit_2(run, tmp_path, case):
    data, snapshot = run
    if case == "garbage snapshot":  # every rank finds it, before any work
        target, out = tmp_path / "network-snapshot-000000.pt", tmp_path / "out"
        target.write_bytes(b"not a checkpoint")
        expected = "is not a training checkpoint"
    else:  # rank 0 alone finds it, when it writes metrics.jsonl after the work
        target, out = snapshot, tmp_path / "a-file"
        out.write_text("")
        expected = "File exists"
    ranks = two_ranks([str(target), "--data", str(data), *FAST, "--no-cache", "--out", str(out)])
    # Blank lines aside: rich's transient bars (rank 0's alone) leave one each on a stream that is no terminal.
    lines = [one_error_line(code, "".join(line for line in err.splitlines(True) if line.strip() or r))
             for r, (code, _, err) in enumerate(ranks)]
    assert lines[0] == lines[1] and expected in lines[0], lines
    assert [stdout for _, stdout, _ in ranks] == ["", ""]
