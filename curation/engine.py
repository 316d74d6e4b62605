"""Where slices run: on Ray (a private local cluster by default, or an existing one, joined
by `cluster.py`), or inline in this process (small inputs, debugging, most tests).

Both take the same slice function and report per-item progress back to the driver: inline by
a plain call, on Ray through a tiny actor that tasks post counts to and the driver drains.
At most two slices per worker are in flight, so the driver never materialises a huge input.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from shards import DatasetError

from .cluster import join_options
from .fetch import Slice, WorkerConfig, run_slice
from .sources import Source
from .workdir import WorkDir

Progress = Callable[[dict[str, int]], None]
Done = Callable[[dict[str, Any]], None]
OBJECT_STORE_BYTES = 200 * 2**20  # slices carry item lists only; image bytes never travel


class Engine(Protocol):
    workers: int

    def run(self, slices: Iterable[Slice], work: WorkDir, source: Source, config: WorkerConfig,
            progress: Progress, done: Done) -> None: ...

    def close(self) -> None: ...


@dataclass
class InlineEngine:
    workers: int = 1

    def run(self, slices, work, source, config, progress, done) -> None:
        for task in slices:
            done(run_slice(work, task, source, config, report=progress))

    def close(self) -> None:
        pass


class LazyEngine:
    """An engine made on first use: a run that finds its dataset finished, or stops at a wrong
    --out, starts no cluster."""

    def __init__(self, make: Callable[[], Engine]):
        self._make = make
        self._engine: Engine | None = None

    def _started(self) -> Engine:
        if self._engine is None:
            self._engine = self._make()
        return self._engine

    @property
    def workers(self) -> int:
        return self._started().workers

    def run(self, slices, work, source, config, progress, done) -> None:
        self._started().run(slices, work, source, config, progress, done)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()


class RayEngine:
    """`address` None or "local": a private Ray on this machine, whatever else runs here.
    Otherwise join that cluster, shipping anyres's packages unless `ship` is False."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, ship: bool = True):
        import ray

        self._ray = ray
        self._owned = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "logging_level": logging.ERROR}
            private = not address or address == "local"
            if private:
                # "local", not None: None joins RAY_ADDRESS or the cluster that `ray start` last
                # recorded on this machine (/tmp/ray/ray_current_cluster), even a dead one.
                options.update(num_cpus=num_cpus or os.cpu_count(), object_store_memory=OBJECT_STORE_BYTES)
            else:
                address, joining = join_options(address, ship)
                options.update(joining)
            try:
                ray.init(address="local" if private else address, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise DatasetError(f"cannot start or join Ray ({address or 'local'}): {exc}") from None
            self._owned = True
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def run(self, slices, work, source, config, progress, done) -> None:
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # On the driver's node: a lost worker node must not take the progress counts with it.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        sink = _sink_actor(ray).options(scheduling_strategy=here).remote()
        remote = ray.remote(_run_remote).options(num_cpus=1, max_retries=3)
        pending: list = []
        try:
            for task in slices:
                pending.append(remote.remote(work, task, source, config, sink))
                while len(pending) >= 2 * self.workers:
                    pending = self._wait(pending, sink, progress, done)
            while pending:
                pending = self._wait(pending, sink, progress, done)
            _drain(ray, sink, progress)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            ray.kill(sink)

    def _wait(self, pending, sink, progress, done):
        ready, pending = self._ray.wait(pending, num_returns=1, timeout=0.25)
        _drain(self._ray, sink, progress)
        for ref in ready:
            done(self._ray.get(ref))
        return pending

    def close(self) -> None:
        if self._owned:
            self._ray.shutdown()


def _run_remote(work, task, source, config, sink):
    import ray

    done = run_slice(work, task, source, config, report=lambda delta: sink.add.remote(delta))
    return {**done, "node": ray.get_runtime_context().get_node_id()}  # where it ran, for cluster checks


def _drain(ray, sink, progress: Progress) -> None:
    delta = ray.get(sink.take.remote())
    if delta:
        progress(delta)


_SINK = None


def _sink_actor(ray):
    global _SINK
    if _SINK is None:
        @ray.remote(num_cpus=0)
        class ProgressSink:
            def __init__(self):
                self.pending: Counter = Counter()

            def add(self, delta: dict[str, int]) -> None:
                self.pending.update(delta)

            def take(self) -> dict[str, int]:
                taken, self.pending = dict(self.pending), Counter()
                return taken

        _SINK = ProgressSink
    return _SINK
