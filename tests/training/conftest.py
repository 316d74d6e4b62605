"""Training-test fixtures and one rule: a test that trains is marked `slow`.

The fast tier (`bash scripts/test.sh --fast`) leaves out what is marked slow. Training steps are
counted per test, its fixtures' steps included (a module fixture's run is charged to the first
test that uses it); past STEPS_UNMARKED, an unmarked test errors at teardown and says so. Runs in
subprocesses are not seen here: those tests are marked by hand.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from training.commands.train import train
from training.run.trainer import Trainer

from .gan_helpers import gan_dataset, tiny_config

STEPS_UNMARKED = 8  # a few steps test a step; more is a training run
_steps = {"count": 0}
_step = Trainer.step


def _counted_step(self, *args, **kwargs):
    _steps["count"] += 1
    return _step(self, *args, **kwargs)


Trainer.step = _counted_step


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _steps["count"] = 0


@pytest.hookimpl(trylast=True)  # after the fixtures' own teardown, which must still run
def pytest_runtest_teardown(item):
    if _steps["count"] > STEPS_UNMARKED and not item.get_closest_marker("slow"):
        pytest.fail(f"{item.nodeid} ran {_steps['count']} training steps (its fixtures' included): "
                    "mark it @pytest.mark.slow", pytrace=False)


@pytest.fixture
def one_thread():
    """Tiny networks run fastest on one thread, and steadily: with two threads on two shared
    cores, OpenMP's spinning makes a step up to ten times slower whenever anything else runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclasses.dataclass(frozen=True)
class TinyRun:
    data: Path  # the gan_dataset it trained on
    out: Path  # its run folder: checkpoint.pt, a snapshot per tick, stats, report.html


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    """The one trained run of the tiny test config, built once per test session and shared by
    every test that needs a real run folder or snapshot (tests using it are slow: it trains)."""
    root = tmp_path_factory.mktemp("tiny-run")
    data = gan_dataset(root / "data", n=12)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(tiny_config(data, root / "run", kimg=0.08, tick_kimg=0.04, snap_ticks=1, report=True))
    finally:
        torch.set_num_threads(before)
    return TinyRun(data, root / "run")
