"""The fetch phase, shared by a new curation and `--add`: the input cut into slices, the
slices run on an engine, and the plan returned to the caller.

The input streams: slices are cut as the engine asks for them, so the driver never holds a
huge input, and a slice whose staging was committed by an earlier (killed) run is reported as
finished instead of being fetched again. Only once the input is exhausted is the number of
slices known; it is returned, and also recorded in the work folder for `status`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .engine import Engine
from .fetch import Slice, WorkerConfig
from .sources import Source
from .workdir import WorkDir

COUNTS = ("items", "kept", "rejected")


class Progress(Protocol):
    def begin(self, total: int | None) -> None: ...
    def advance(self, delta: dict[str, int]) -> None: ...


@dataclass(frozen=True)
class FetchPlan:
    slices: int
    items: int

    @property
    def numbers(self) -> range:
        return range(self.slices)


def plan_slices(source: Source, slice_size: int, work: WorkDir, finished: Callable[[dict], None],
                planned: Callable[[FetchPlan], None] = lambda plan: None) -> Iterator[Slice]:
    """Slices of the input, streaming; finished ones are reported, not yielded. `planned` gets
    the plan once the input is exhausted."""
    items = source.items()
    count = 0
    for number in itertools.count():
        chunk = tuple(itertools.islice(items, slice_size))
        if not chunk:
            planned(FetchPlan(number, count))
            return
        count += len(chunk)
        done = work.done(number)
        if done is not None and done["items"] == len(chunk):
            finished(done)
        else:
            yield Slice(number, chunk)


def fetch_phase(source: Source, slice_size: int, worker: WorkerConfig, work: WorkDir, engine: Engine,
                events: Progress) -> FetchPlan:
    """Fetch every slice not yet committed; the plan of the whole input."""
    work.clear_parts()
    events.begin(source.count())
    found: list[FetchPlan] = []

    def planned(plan: FetchPlan) -> None:
        work.save_plan(plan.slices, plan.items)
        found.append(plan)

    def finished(done: dict[str, Any]) -> None:
        events.advance({k: done[k] for k in COUNTS})

    engine.run(plan_slices(source, slice_size, work, finished, planned), work, source, worker,
               progress=events.advance, done=lambda done: None)
    work.pull(found[0].numbers)
    return found[0]
