"""Live training output (issue 14): a line per tick with kimg, s/kimg, losses and ETA, and
TensorBoard scalars and sample grids when tensorboard is installed, nothing when it is not."""

from __future__ import annotations

import builtins
import re

import pytest

from training.run import progress
from training.run.loop import train

from .gan_helpers import gan_dataset, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_tick_line_says_where_the_run_is_how_fast_and_when_it_ends():
    record = {"tick": 3, "kimg": 0.96, "sec_per_kimg": 155.66, "loss_G": 0.7735, "loss_D": 1.1466, "R1": None,
              "teacher": None, "aug_p": 0.0, "metric/kid-full": 0.0123}
    line = progress.tick_line(record, 6.0)
    assert line == ("tick 3  0.96/6.00 kimg  155.7 s/kimg  G 0.773 D 1.147 ADA p 0.000  kid-full 0.0123  "
                    "ETA 13m05s")  # 5.04 kimg at 155.66 s/kimg: 784.5 s
    assert progress.tick_line({**record, "kimg": 6.0}, 6.0).endswith("done")
    assert progress.duration(3 * 3600 + 59) == "3h00m" and progress.duration(float("inf")) == "?"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return gan_dataset(tmp_path_factory.mktemp("progress") / "ds", n=8)


@pytest.mark.slow  # trains
def test_training_prints_every_tick_and_logs_scalars_and_samples_to_tensorboard(data, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    train(tiny_config(data, run, kimg=0.08, tick_kimg=0.04, snap_ticks=1))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tick ")]
    assert len(lines) == 2 and re.search(r"0\.04/0\.08 kimg .* s/kimg .*G \d\.\d{3} D \d\.\d{3}.*ETA \d+m\d\ds", lines[0])
    assert lines[1].endswith("done")
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert {"loss_G", "loss_D", "sec_per_kimg"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("loss_G")] == [40, 80]  # x axis: images shown
    assert len(events.Images("samples")) == 2


@pytest.mark.slow  # trains
def test_without_tensorboard_training_writes_no_logs_and_says_so_once(data, tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    run = tmp_path / "run"
    train(tiny_config(data, run, kimg=0.04, tick_kimg=0.04))
    out = capsys.readouterr().out
    assert out.count("no TensorBoard logs") == 1 and "tick 1" in out
    assert not (run / "tensorboard").exists()
