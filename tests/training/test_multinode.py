"""Two nodes under torchrun, on this machine: `--nnodes 2 --node-rank 0/1` meeting at a c10d
rendezvous on 127.0.0.1 (which numbers the nodes itself: torchrun ignores --node-rank for c10d),
two processes a node (gloo) and two loader workers a process, running the real training loop
(`training.run.loop.train`).

Three launches of both nodes, the first two at once (two cores: the start-up of 4 processes,
mostly imports, is most of a launch):
- `whole`: 8 uninterrupted steps. The 8 readers (4 ranks x 2 workers) see every sample exactly
  once an epoch, and the 4 ranks end with bit-identical weights.
- `broken`: the same run, held at its checkpoint of step 6 (mid-epoch) until node 0 (the
  rendezvous host) is killed: its torchrun and every process under it, SIGKILL. Node 1 then
  stops on its own within seconds: its processes fail at their next collective, and its
  torchrun, which has lost the rendezvous store too, takes them down and exits.
- `resumed`: both nodes' commands again with the same run folder and `resume=True`: the final
  checkpoint is bit for bit the whole run's, and so are the losses of every tick. A resume with
  another number of processes (only one node's) is refused with one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import torch

from shards.format.reader import Dataset
from training import checkpoint
from training.errors import TrainingError
from training.networks.generator import Generator
from training.run.validate import check_run

from .gan_helpers import SUBPROCESS_ENV, TINY_G, gan_dataset, tiny_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SAMPLES = 32  # one shard, in 8 slices of 4: each reader's quota (2 batches of 2) is its slice
STEPS, HOLD_STEP = 8, 6  # global batch 8: 4 steps an epoch; checkpoints at steps 6 and 8
KIMG = dict(kimg=STEPS * 8 / 1000, tick_kimg=0.016, snap_ticks=3)  # a tick every 2 steps
WAIT = 240  # seconds for all three launches, within pytest's 300 (70 to 85 measured, on two busy cores)

# argv: repo, data, run folder, record folder, mode ("whole", "hold" or "resume"), hold step, the
# config's lengths (JSON). The loop is the real one, less its curves.png; the wrappers only watch
# it (each batch's keys, each rank's final weights), and in mode "hold" wait after the checkpoint
# of the hold step, so that the kill lands there.
WORKER = textwrap.dedent("""
    import json, os, sys, time
    from dataclasses import replace
    sys.path.insert(0, sys.argv[1])
    import torch
    from tests.training.gan_helpers import tiny_config
    from training.run import loop

    data, out, record, mode, hold = sys.argv[2:7]
    cfg = tiny_config(data, out, resume=mode == "resume", **json.loads(sys.argv[7]))
    cfg = replace(cfg, loader=replace(cfg.loader, num_workers=2))
    seen = []

    def next_batch(self, next_=loop.DataStream.next):
        batch = next_(self)
        seen.append({"epoch": self.epoch, "reader": batch.reader, "keys": list(batch.key)})
        return batch

    def snapshot(self, snapshot_=loop.Run.snapshot):
        path = snapshot_(self)
        if mode == "hold" and self.step == int(hold):
            if self.rank == 0:  # checkpoint.pt of this step is written
                open(os.path.join(record, "saved"), "w").close()
            deadline = time.monotonic() + 300  # never left waiting for a test that died
            while not os.path.exists(os.path.join(record, "go")) and time.monotonic() < deadline:
                time.sleep(0.05)
        return path

    def run(self, run_=loop.Run.run):
        result = run_(self)
        nets = {k: v for k, v in self.trainer.state_dict().items() if k in ("G", "G_ema", "D")}
        torch.save(nets, os.path.join(record, f"rank{self.rank}.pt"))
        with open(os.path.join(record, f"rank{self.rank}.json"), "w") as f:
            json.dump({"world": self.world.size, "seen": seen}, f)
        return result

    loop.DataStream.next, loop.Run.snapshot, loop.Run.run = next_batch, snapshot, run
    loop.stats_log.plot_curves = lambda records, path: None  # curves.png: 2 s of matplotlib a snapshot
    loop.train(cfg)
    sys.stdout.flush()
    os._exit(0)  # trained and saved: skip the interpreter's teardown of torch and scipy (2-3 s of CPU)
""")


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tagged(tag: str) -> list[int]:
    """Every process whose environment holds `tag`: a torchrun, its workers (each in a session of
    its own, so not in torchrun's process group) and their loader workers, parent or not."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if tag.encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:  # gone, or a zombie
                pass
    return found


def kill_tagged(tag: str) -> None:
    for _ in range(5):  # again, in case one forked meanwhile
        pids = tagged(tag)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


class Nodes:
    """Two torchrun agents, node ranks 0 and 1, meeting at a fresh c10d rendezvous on 127.0.0.1;
    every process under node n carries the environment variable `self.tags[n]`."""

    def __init__(self, name: str, tmp: Path, port: int, *args: str):
        self.tags = [f"ANYRES_TEST_NODE={uuid.uuid4().hex}" for _ in range(2)]
        self.logs = [tmp / f"{name}-node{n}.log" for n in range(2)]
        self.procs: list[subprocess.Popen] = []
        run_id = f"{name}-{uuid.uuid4().hex[:8]}"
        try:
            for node in range(2):
                # Node 0 hosts the rendezvous store, as the machine named in --rdzv-endpoint does.
                cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank",
                       str(node), "--nproc-per-node", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint",
                       f"127.0.0.1:{port}", "--rdzv-id", run_id, "--rdzv-conf", f"is_host={node == 0}", *args]
                key, value = self.tags[node].split("=")
                env = {**SUBPROCESS_ENV, key: value}
                with open(self.logs[node], "w") as log:
                    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
                self.procs.append(proc)
        except BaseException:
            self.close()
            raise

    def wait(self, timeout: float) -> list[int | None]:
        deadline = time.monotonic() + timeout
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.0, deadline - time.monotonic()))
        return [p.poll() for p in self.procs]

    def logs_tail(self) -> str:
        return "\n".join(f"--- node {n}\n{log.read_text()[-2500:]}" for n, log in enumerate(self.logs))

    def kill(self, node: int) -> None:
        kill_tagged(self.tags[node])
        self.procs[node].wait()

    def close(self) -> None:
        for node in range(len(self.procs)):
            self.kill(node)


@dataclasses.dataclass
class Runs:
    data: Path
    root: Path
    survivor_seconds: float
    survivor_code: int | None
    survivor_left: list[int]  # processes of the surviving node still there after its torchrun ended

    def record(self, name: str, rank: int) -> dict:
        return json.loads((self.root / f"{name}-record" / f"rank{rank}.json").read_text())

    def weights(self, name: str, rank: int) -> dict[str, torch.Tensor]:
        return flat(torch.load(self.root / f"{name}-record" / f"rank{rank}.pt", weights_only=True))

    def checkpoint(self, run: str) -> dict:
        return checkpoint.load(self.root / run / checkpoint.CHECKPOINT)

    def stats(self, run: str) -> list[dict]:
        return [json.loads(line) for line in (self.root / run / "stats.jsonl").read_text().splitlines()]


def flat(state: dict) -> dict[str, torch.Tensor]:
    return {f"{net}.{k}": v for net, sd in state.items() for k, v in sd.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    root = tmp_path_factory.mktemp("multinode")
    data = gan_dataset(root / "ds", n=SAMPLES)
    script = root / "worker.py"
    script.write_text(WORKER)

    def launch(name: str, mode: str, port: int, run: str | None = None) -> Nodes:
        (root / f"{name}-record").mkdir()
        return Nodes(name, root, port, str(script), str(REPO), str(data), str(root / (run or name)),
                     str(root / f"{name}-record"), mode, str(HOLD_STEP), json.dumps(KIMG))

    launched: list[Nodes] = []
    try:
        ports = free_ports(2)  # each just before its launch: the runs' own connections take ports too
        whole = launch("whole", "whole", ports[0])
        launched.append(whole)
        broken = launch("broken", "hold", ports[1])
        launched.append(broken)
        saved = root / "broken-record" / "saved"
        deadline = time.monotonic() + WAIT
        while not saved.exists() and time.monotonic() < deadline and None in (p.poll() for p in broken.procs):
            time.sleep(0.05)
        assert saved.exists(), f"the run to kill never reached its checkpoint\n{broken.logs_tail()}"
        assert checkpoint.load(root / "broken" / checkpoint.CHECKPOINT)["step"] == HOLD_STEP
        broken.kill(0)  # the node hosting the rendezvous
        killed = time.monotonic()
        (root / "broken-record" / "go").touch()  # node 1 goes on into its next all-reduce
        code = broken.wait(min(60.0, deadline - time.monotonic()))[1]
        survivor_seconds = time.monotonic() - killed
        left = tagged(broken.tags[1])
        broken.close()
        resumed = launch("resumed", "resume", free_ports(1)[0], run="broken")
        launched.append(resumed)
        for nodes in (whole, resumed):
            codes = nodes.wait(deadline - time.monotonic())
            assert codes == [0, 0], f"exit codes {codes}\n{nodes.logs_tail()}"
    finally:
        for nodes in launched:
            nodes.close()
    return Runs(data, root, survivor_seconds, code, left)


def test_eight_readers_on_two_nodes_see_every_sample_once_an_epoch(runs):
    keys = sorted(Dataset(str(runs.data)).index["key"].to_pylist())
    ranks = [runs.record("whole", r) for r in range(4)]
    assert all(r["world"] == 4 for r in ranks)
    for rank, r in enumerate(ranks):
        assert [b["epoch"] for b in r["seen"]] == [0] * 4 + [1] * 4  # the same epochs on every rank
        assert {b["reader"] for b in r["seen"]} == {2 * rank, 2 * rank + 1}  # its two loader workers
        assert all(len(b["keys"]) == 2 for b in r["seen"])
    for epoch in (0, 1):
        seen = sorted(k for r in ranks for b in r["seen"] if b["epoch"] == epoch for k in b["keys"])
        assert seen == keys  # every sample, exactly once, across the 8 readers


def test_four_ranks_on_two_nodes_end_with_bit_identical_weights(runs):
    first, *others = (runs.weights("whole", r) for r in range(4))
    for other in others:
        assert first.keys() == other.keys()
        for key in first:
            assert torch.equal(first[key], other[key]), key
    saved = flat({k: runs.checkpoint("whole")["trainer"][k] for k in ("G", "G_ema", "D")})
    assert all(torch.equal(first[k], saved[k]) for k in first)  # and rank 0 saved them
    torch.manual_seed(0)  # the trainer's seed: the weights every rank started from
    initial = flat({"G": Generator(TINY_G).state_dict()})
    assert any(not torch.equal(first[k], initial[k]) for k in initial if "weight" in k)  # it did train


def test_the_node_left_alone_stops_by_itself(runs):
    assert runs.survivor_code not in (None, 0), "the surviving node went on, or hung"
    assert runs.survivor_seconds < 30  # measured: about 2 s (gloo sees the closed connections)
    assert runs.survivor_left == []  # its torchrun took its workers down with it


def test_both_nodes_rerun_resume_to_the_uninterrupted_weights(runs):
    whole, resumed = runs.checkpoint("whole"), runs.checkpoint("broken")
    assert whole["step"] == resumed["step"] == STEPS
    for part in ("G", "G_ema", "D", "opt_G", "opt_D"):  # the networks and Adam's moments
        a, b = (state["trainer"][part] for state in (whole, resumed))
        a, b = (flat(x["state"]) if part.startswith("opt") else x for x in (a, b))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), part
    expected = runs.weights("whole", 0)
    for rank in range(4):  # every rank of the resumed run, not only the one that saved
        assert all(torch.equal(v, expected[k]) for k, v in runs.weights("resumed", rank).items())
    keys = ("step", "loss_G", "loss_D", "D_real", "D_fake", "R1", "loader")
    assert [{k: r[k] for k in keys} for r in runs.stats("broken")] == [{k: r[k] for k in keys}
                                                                         for r in runs.stats("whole")]
    # The resumed run started from step 6: it replayed 2 batches of epoch 1, then took 2 more.
    assert [b["epoch"] for b in runs.record("resumed", 0)["seen"]] == [1, 1]


def test_a_resume_with_only_one_nodes_processes_is_refused_in_one_line(runs):
    cfg = tiny_config(runs.data, runs.root / "whole", resume=True, **KIMG)
    with pytest.raises(TrainingError) as error:
        check_run(cfg, 2)
    message = str(error.value)
    assert "\n" not in message and "written by 4 processes; resume with as many (this run has 2)" in message
