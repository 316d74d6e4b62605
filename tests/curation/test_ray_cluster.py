"""`anyres-curate` and real Ray clusters on this machine, run as a user runs them (subprocesses):

- a head and a second node started by `ray start` with Ray's default authentication (the head
  checks the token it finds; the second node is given it), whose Python cannot import anyres:
  a run with --ray-address sends the token, ships anyres's packages, spreads slices over both
  nodes and makes the inline run's dataset, into an object store (the tests' S3 server, with
  no shared folder: each node commits its slices there) and into a shared folder when the
  second node dies mid-run;
- a missing or wrong token ends in one line;
- without --ray-address a run starts its own private Ray while that cluster runs (named by
  RAY_ADDRESS and recorded in the cluster file), beside a stale cluster file, and twice at once;
- a driver that has a token joins a cluster without authentication too.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import s3fs

from tests.s3server import ACCESS_KEY, SECRET_KEY

from .helpers import snapshot
from .image_server import ImageServer

pytestmark = [pytest.mark.ray, pytest.mark.slow]

BIN = Path(sys.executable).parent
CURATE = [str(BIN / "anyres-curate")]
FLAGS = ["--slice-size", "4", "--timeout", "10", "--retries", "0", "--threads", "2", "--shard-size", "3MB",
         "--max-bytes", "2MB", "--min-side", "256"]
SLICES = 8  # 29 URLs in slices of 4
# Ray puts the driver's working directory on the workers' path: run away from the checkout,
# so that the workers import only the anyres that the job ships.
CWD = "/"

# The nodes' Python without the editable install of anyres (a .pth file adds its import hook).
HIDE_ANYRES = ("import sys\n"
               "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in getattr(f, '__module__', '')]\n")

# The CLI, recording which node returned each slice and which nodes were alive at the end.
RECORDING = """
import json, os, sys
import ray
from curation import cli, engine

nodes, run = [], engine.RayEngine.run

def recording(self, slices, work, source, config, progress, done):
    def record(value):
        nodes.append(value["node"])
        done(value)

    run(self, slices, work, source, config, progress, record)
    alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    with open(os.environ["NODES_JSON"], "w") as f:
        json.dump({"slices": nodes, "alive": alive}, f)

engine.RayEngine.run = recording
sys.exit(cli.main(sys.argv[1:]))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Cluster:
    """Nodes on 127.0.0.1, each a `ray start --block` in its own process group. RAY_TMPDIR makes
    `root/ray`, the head's temp dir, the default of every Ray started with `env`, so the head's
    cluster file is where `ray.init()` looks (as /tmp/ray is on a plain machine)."""

    def __init__(self, root: Path, s3_env: dict[str, str] | None = None):
        self.root = root
        token = root / "token"
        token.write_text(secrets.token_hex(32))
        hide = root / "hide"
        hide.mkdir()
        (hide / "sitecustomize.py").write_text(HIDE_ANYRES)
        base = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
        self.env = {**base, **(s3_env or {}), "RAY_TMPDIR": str(root), "RAY_AUTH_TOKEN_PATH": str(token)}
        self.node_env = {**self.env, "PYTHONPATH": str(hide),
                         # a lost node is noticed in about a second, not Ray's 15
                         "RAY_health_check_period_ms": "300", "RAY_health_check_timeout_ms": "300",
                         "RAY_health_check_failure_threshold": "3"}
        self.address = f"127.0.0.1:{free_port()}"
        self.procs: dict[str, subprocess.Popen] = {}

    def start_head(self, **env: str) -> None:
        self.launch("head", "--head", "--port", self.address.split(":")[1], "--include-dashboard", "false",
                    "--dashboard-port", str(free_port()), "--ray-client-server-port", str(free_port()),
                    "--no-monitor", **env)  # no autoscaler: fewer idle processes on two cores

    def start_worker(self) -> None:
        host, port = self.address.split(":")
        wait_for(lambda: reachable(host, int(port)), 60, "the head's GCS")  # the rest of the head may still start
        # Ray's default for a node joining a cluster is no token: the operator turns it on.
        self.launch("worker", "--address", self.address, RAY_AUTH_MODE="token")

    def launch(self, name: str, *args: str, **env: str) -> None:
        with open(self.root / f"{name}.log", "wb") as out:
            self.procs[name] = subprocess.Popen(
                [str(BIN / "ray"), "start", *args, "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
                 "--temp-dir", str(self.root / "ray"), "--dashboard-agent-listen-port", str(free_port()),
                 "--include-log-monitor", "false", "--disable-usage-stats", "--block"],
                env={**self.node_env, **env}, cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    def wait_started(self) -> None:
        for name in self.procs:
            self.wait_node(name)

    def wait_node(self, name: str) -> None:
        proc, log = self.procs[name], self.root / f"{name}.log"
        wait_for(lambda: b"Ray runtime started" in log.read_bytes() or proc.poll() is not None, 60, f"ray start {name}")
        assert proc.poll() is None, log.read_text()[-3000:]

    def kill(self, name: str) -> None:
        """The node's process tree at once, as a lost machine."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name)
        # Anything of ours still running elsewhere (a worker that left the group): by its paths.
        for pid in os.listdir("/proc"):
            try:
                if pid.isdigit() and str(self.root).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


@contextlib.contextmanager
def new_cluster(s3_env: dict[str, str] | None = None):
    root = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # unix socket paths must stay short
    cluster = Cluster(root, s3_env)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(s3_server):
    """A head and a second node with Ray's default authentication; every node (and the driver)
    reaches the tests' S3 server through the usual AWS variables, as a cloud node would."""
    s3_server.make_bucket("cluster")
    with new_cluster(s3_server.env()) as cluster:
        cluster.start_head()
        cluster.start_worker()
        cluster.wait_started()
        yield cluster


@pytest.fixture(scope="module")
def server(corpus):
    """One image server for the module, so that one inline run serves every comparison."""
    good, bad = corpus
    server = ImageServer({name: case[0] for name, case in [*good.items(), *bad.items()]})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def listing(tmp_path_factory, server, corpus):
    good, bad = corpus
    path = tmp_path_factory.mktemp("list") / "urls.txt"
    path.write_text("".join(server.url(f"img/{n}") + "\n" for n in [*good, *bad, "missing.jpg"]))
    return path


@pytest.fixture(scope="module")
def inline(tmp_path_factory, listing):
    """The dataset that the inline engine makes of `listing`."""
    out = tmp_path_factory.mktemp("inline") / "ds"
    result = curate("urls", listing, "--out", out, "--no-ray", env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    return snapshot(out)


def curate(*args, env, recording: Path | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-c", RECORDING] if recording else CURATE
    env = {**env, "NODES_JSON": str(recording)} if recording else env
    return subprocess.run([*argv, *map(str, args), *FLAGS], env=env, cwd=CWD, capture_output=True, text=True,
                          timeout=120)


def staged(out: Path) -> list[str]:
    return sorted(p.parent.name for p in (out / "work" / "staging").glob("slice-*/done.json"))


def test_nodes_cannot_import_anyres(cluster):
    hidden = subprocess.run([sys.executable, "-c", "import curation"], env=cluster.node_env, cwd=cluster.root,
                            capture_output=True)
    assert hidden.returncode != 0  # so a cluster run works only because the job ships anyres


def test_a_two_node_cluster_with_token_auth_makes_the_inline_dataset_in_s3(cluster, tmp_path, listing, inline,
                                                                          server, s3_server):
    nodes = tmp_path / "nodes.json"
    url = "s3://cluster/ds"
    # Slices of about a second: longer than a node takes to start its first worker, so the
    # head's worker cannot finish them all alone.
    server.delay = 0.4
    try:
        result = curate("urls", listing, "--out", url, "--scratch", tmp_path / "scratch", "--ray-address",
                        cluster.address, env=cluster.env, recording=nodes)
    finally:
        server.delay = 0.0
    assert result.returncode == 0, result.stderr[-3000:]
    verify = subprocess.run([str(BIN / "anyres-shards"), "verify", url, "--deep"], capture_output=True, text=True,
                            env=cluster.env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    s3fs.S3FileSystem(endpoint_url=s3_server.endpoint, key=ACCESS_KEY, secret=SECRET_KEY,
                      skip_instance_cache=True).get("cluster/ds", str(tmp_path / "down"), recursive=True)
    assert snapshot(tmp_path / "down") == inline
    record = json.loads(nodes.read_text())
    assert len(record["slices"]) == SLICES
    assert len(set(record["alive"])) == 2 and set(record["slices"]) == set(record["alive"])  # both ran slices


def test_a_missing_or_wrong_token_is_one_line(cluster, tmp_path, listing):
    wrong_token = secrets.token_hex(32)
    home = tmp_path / "home"
    home.mkdir()
    envs = {"wrong": {**cluster.env, "RAY_AUTH_TOKEN": wrong_token},
            "missing": {**{k: v for k, v in cluster.env.items() if k != "RAY_AUTH_TOKEN_PATH"}, "HOME": str(home)},
            "disabled": {**cluster.env, "RAY_AUTH_MODE": "disabled"}}
    start = time.monotonic()
    runs = {name: subprocess.Popen([*CURATE, "urls", str(listing), "--out", str(tmp_path / name), "--ray-address",
                                    cluster.address], env=env, cwd=CWD, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
            for name, env in envs.items()}
    ends = {name: proc.communicate(timeout=60) for name, proc in runs.items()}
    assert time.monotonic() - start < 30
    expect = {"wrong": "refused this machine's token (from RAY_AUTH_TOKEN)",
              "missing": "needs an authentication token and this machine has none",
              "disabled": "RAY_AUTH_MODE=disabled here sends none"}
    for name, (_, err) in ends.items():
        assert runs[name].returncode == 2, err
        assert err.count("\n") == 1 and err.startswith("anyres-curate: error: Ray at ") and expect[name] in err, err
        assert "auth_token" in err and wrong_token not in err


def test_losing_a_node_mid_run_loses_and_repeats_nothing(cluster, tmp_path, listing, inline, server):
    out = tmp_path / "ray"
    server.delay = 0.2  # a few seconds in all: the kill lands mid-run
    try:
        run = subprocess.Popen([*CURATE, "urls", str(listing), "--out", str(out), "--ray-address", cluster.address,
                                *FLAGS], env=cluster.env, cwd=CWD, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
        wait_for(lambda: staged(out) or run.poll() is not None, 60, "a first slice")
        cluster.kill("worker")
        assert len(staged(out)) < SLICES, "the kill must land mid-run"
        _, err = run.communicate(timeout=120)
    finally:
        server.delay = 0.0
    if run.returncode != 0:  # the run may fail with the node; then a rerun resumes it
        rerun = curate("urls", listing, "--out", out, "--ray-address", cluster.address, env=cluster.env)
        assert rerun.returncode == 0, err + rerun.stderr
    snap = snapshot(out)
    assert snap == inline
    assert len({row["key"] for row in snap["rows"]}) == len(snap["rows"])


def test_without_an_address_each_run_starts_a_private_ray(cluster, tmp_path, corpus):
    """Two runs at once: one where RAY_ADDRESS and the cluster file name the running cluster,
    one beside the cluster file that a killed Ray left behind. ray.init() would join either."""
    good, _ = corpus
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("photo-0.jpg", "photo-1.jpg"):
        (photos / name).write_bytes(good[name][0])
    assert (cluster.root / "ray" / "ray_current_cluster").is_file()
    stale = cluster.root / "stale"  # a RAY_TMPDIR (short: socket paths) whose cluster file names a dead Ray
    (stale / "ray").mkdir(parents=True)
    (stale / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
    envs = {"live": {**cluster.env, "RAY_ADDRESS": cluster.address}, "stale": {**cluster.env, "RAY_TMPDIR": str(stale)}}
    runs = {name: subprocess.Popen([*CURATE, "folder", str(photos), "--out", str(tmp_path / name), "--workers", "1"],
                                   env=env, cwd=CWD, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for name, env in envs.items()}
    for name, proc in runs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{name}: {err[-3000:]}"
    assert snapshot(tmp_path / "live") == snapshot(tmp_path / "stale")
    assert snapshot(tmp_path / "live")["counts"]["kept"] == 2


def test_a_driver_with_a_token_joins_a_cluster_without_authentication(tmp_path, listing):
    """The driver's mode follows the cluster's: a driver in token mode would refuse the calls of
    workers that send no token."""
    with new_cluster() as cluster:
        cluster.start_head(RAY_AUTH_MODE="disabled")
        cluster.wait_started()
        short = tmp_path / "three.txt"
        short.write_text("".join(listing.read_text().splitlines(keepends=True)[:3]))
        result = curate("urls", short, "--out", tmp_path / "ds", "--ray-address", cluster.address,
                        env={**cluster.env, "RAY_AUTH_MODE": "token"})
        assert result.returncode == 0, result.stderr[-3000:]
