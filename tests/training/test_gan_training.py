"""Training on a real (tiny) dataset through the real loader: the GAN moves as a GAN should,
stage 2's teacher loss falls, the run folder holds what it promises, and a killed run resumes
to exactly the losses of an uninterrupted one."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from training import checkpoint
from training.run.loop import train

from .gan_helpers import SUBPROCESS_ENV, gan_dataset, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[2]


def stats(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def mean(records: list[dict], key: str) -> float:
    values = [r[key] for r in records if r.get(key) is not None]
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return gan_dataset(tmp_path_factory.mktemp("gan") / "ds")


@pytest.fixture(scope="module")
def stage1(data, tmp_path_factory) -> Path:
    """A few hundred global-stage steps: 240 steps of 8 images."""
    run = tmp_path_factory.mktemp("stage1") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see gan_helpers.one_thread
    train(tiny_config(data, run, kimg=1.92, tick_kimg=0.16, snap_ticks=4))
    torch.set_num_threads(threads)
    return run


@pytest.mark.slow
def test_global_stage_moves_the_losses_and_opens_a_real_fake_gap(stage1):
    records = stats(stage1)
    assert [r["step"] for r in records] == list(range(20, 241, 20))
    first, later = records[0], records[2:]
    # D starts unable to tell (both losses near log 2 per term) and learns within the first tick:
    # StyleGAN3's first images are faint (output scale 1/4). Then it separates real from fake,
    # and G's loss rises as it is caught out.
    assert first["loss_D"] > mean(later, "loss_D") + 0.2 and first["loss_G"] < mean(later, "loss_G") - 0.2
    assert mean(later, "loss_D") < 2 * math.log(2) - 0.2
    assert mean(later, "loss_G") > math.log(2) + 0.2
    assert mean(later, "D_real") - mean(later, "D_fake") > 1.0 > first["D_real"] - first["D_fake"]
    assert all(r["R1"] is not None and r["R1"] >= 0 for r in records)
    assert all(r["teacher"] is None and r["patch_fraction"] == 0 for r in records)
    last = records[-1]
    assert last["loader"]["global/patches"] >= 240 * 8 and last["images_per_sec"] > 0 and last["sec_per_kimg"] > 0
    # Run folder: config, curves, one fixed-seed sample grid per snapshot, the checkpoint.
    assert json.loads((stage1 / "config.json").read_text())["stage"] == "global"
    assert (stage1 / "curves.png").stat().st_size > 10_000
    assert sorted(p.name for p in stage1.glob("samples-*.png")) == [f"samples-{s:07d}.png" for s in (80, 160, 240)]
    state = checkpoint.load(stage1 / checkpoint.CHECKPOINT)
    assert state["step"] == 240 and set(state["trainer"]) >= {"G", "G_ema", "D", "opt_G", "opt_D"}


@pytest.mark.slow
def test_patch_stage_teacher_term_holds_the_student_to_the_teacher(stage1, data, tmp_path):
    """200 patch steps from the stage-1 checkpoint. A stage-1 network this young is far from
    converged, so the adversarial game keeps moving it away from the teacher: without the term
    (the control) the distance grows by a quarter over the run; with it (weight 5, the default)
    it grows a fifth as much (StyleGAN3's layers render a zoomed patch unlike the global view
    until they learn otherwise, so it starts well above zero)."""
    teacher = str(stage1 / checkpoint.CHECKPOINT)
    common = dict(stage="patch", teacher=teacher, kimg=1.6, tick_kimg=0.16, snap_ticks=100, lr_g=0.0005,
                  lr_d=0.0005, patch_prob=1.0)
    train(tiny_config(data, tmp_path / "run", **common))
    train(tiny_config(data, tmp_path / "control", teacher_weight=0.0, **common))
    teacher_l1 = [r["teacher"] for r in stats(tmp_path / "run")]
    control = [r["teacher"] for r in stats(tmp_path / "control")]
    start, end = sum(teacher_l1[:2]) / 2, sum(teacher_l1[-3:]) / 3
    control_start, control_end = sum(control[:2]) / 2, sum(control[-3:]) / 3
    assert control_end > 1.15 * control_start, control  # the drift the term is there to stop
    assert end - start < 0.5 * (control_end - control_start), (teacher_l1, control)
    assert end < 0.85 * control_end, (teacher_l1, control)
    assert stats(tmp_path / "run")[-1]["loader"]["patch/patches"] >= 200 * 8


@pytest.mark.slow
def test_patch_stage_mixes_streams_with_the_given_probability(stage1, data, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(data, run, stage="patch", teacher=str(stage1 / checkpoint.CHECKPOINT), kimg=0.32,
                      tick_kimg=0.32, patch_prob=0.25))
    (record,) = stats(run)
    assert 0.1 < record["patch_fraction"] < 0.45  # 40 steps at 0.25
    assert record["teacher"] is not None and record["loader"]["patch/patches"] > 0


KILLABLE = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[4])
    from tests.training.gan_helpers import tiny_config
    from training.run.loop import train
    train(tiny_config(sys.argv[1], sys.argv[2], stage="patch", teacher=sys.argv[3], kimg=0.48))
""")


@pytest.mark.slow
def test_killed_and_resumed_run_matches_an_uninterrupted_one(stage1, data, tmp_path):
    teacher = str(stage1 / checkpoint.CHECKPOINT)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    train(tiny_config(data, whole, stage="patch", teacher=teacher, kimg=0.48))  # 60 steps, snapshots every 10
    script = tmp_path / "killable.py"
    script.write_text(KILLABLE)
    proc = subprocess.Popen([sys.executable, str(script), str(data), str(broken), teacher, str(REPO)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=SUBPROCESS_ENV)
    ckpt = broken / checkpoint.CHECKPOINT
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.is_file() and checkpoint.load(ckpt)["step"] >= 20:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # no clean-up, no final snapshot
    proc.wait()
    killed_at = checkpoint.load(ckpt)["step"]
    assert 20 <= killed_at < 60
    train(tiny_config(data, broken, stage="patch", teacher=teacher, kimg=0.48, resume=True))
    keys = ("step", "loss_G", "loss_D", "D_real", "D_fake", "R1", "teacher", "patch_fraction", "loader")
    expected = [{k: r[k] for k in keys} for r in stats(whole)]
    assert [{k: r[k] for k in keys} for r in stats(broken)] == expected  # exact, float for float
    a, b = (checkpoint.load(run / checkpoint.CHECKPOINT)["trainer"] for run in (whole, broken))
    for net in ("G", "G_ema", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])
