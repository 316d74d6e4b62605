"""Network snapshots (issue 12): every --snap ticks a kept network-snapshot-KIMG.pt with G, G_ema, D
and the config, next to the replaced checkpoint.pt; each loads back as what was saved, a resumed
run writes the same ones, and --teacher and load_generator take a snapshot as well as a
checkpoint, while a damaged one is one line and exit 2."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from tests.cli_outcome import one_error_line, run_main
from training import checkpoint
from training.commands.train import build_parser, main
from training.commands.train_flags import config_from_args
from training.errors import TrainingError
from training.run.config import PRESETS
from training.run.loop import train

from .gan_helpers import gan_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def preset_config(data: Path, out: Path, **overrides):
    """The tiny preset (R = p = 32) on a very short schedule: ticks of one step of 8 images."""
    base = PRESETS["tiny"]
    loader = dataclasses.replace(base.loader, data=str(data), batch_size=8, shuffle_buffer=16, shuffle_initial=8)
    settings = {"tick_kimg": 0.008, "snap_ticks": 2, "kimg": 0.032, **overrides}
    return dataclasses.replace(base, out=str(out), loader=loader, **settings)


def networks_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run of 4 steps (snapshots at steps 2 and 4), and one stopped at step 2 and resumed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see gan_helpers.one_thread
    root = tmp_path_factory.mktemp("snapshots")
    data = gan_dataset(root / "ds", n=6)
    train(preset_config(data, root / "whole"))
    train(preset_config(data, root / "broken", kimg=0.016))
    stopped = {p.name: checkpoint.load(p) for p in (root / "broken").glob("*.pt")}
    train(preset_config(data, root / "broken", resume=True))
    torch.set_num_threads(threads)
    return data, root / "whole", root / "broken", stopped


def test_snapshot_names_are_whole_kimg_unless_a_snapshot_falls_between():
    assert checkpoint.snapshot_name(123_000) == "network-snapshot-000123.pt"  # StyleGAN's naming
    assert checkpoint.snapshot_name(0) == "network-snapshot-000000.pt"
    assert checkpoint.snapshot_name(80) == "network-snapshot-000000.080.pt"
    assert checkpoint.snapshot_name(3_200) == "network-snapshot-000003.200.pt"


def test_the_snap_flag_and_its_old_name(tmp_path):
    argv = ["train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run")]
    assert config_from_args(build_parser().parse_args([*argv, "--snap", "3"])).snap_ticks == 3
    assert config_from_args(build_parser().parse_args([*argv, "--snap-ticks", "4"])).snap_ticks == 4
    assert config_from_args(build_parser().parse_args(argv)).snap_ticks == PRESETS["tiny"].snap_ticks


@pytest.mark.slow  # the module's runs train
def test_snapshots_are_written_every_snap_ticks_and_kept(runs):
    _, whole, _, stopped = runs
    names = sorted(p.name for p in whole.glob("network-snapshot-*.pt"))
    assert names == ["network-snapshot-000000.016.pt", "network-snapshot-000000.032.pt"]  # steps 2 and 4
    assert sorted(stopped) == ["checkpoint.pt", "network-snapshot-000000.016.pt"]
    for name in names:
        snap = checkpoint.load(whole / name)  # weights_only: plain tensors and values
        assert set(snap) == {"G", "G_ema", "D", "config", "step"}
        assert snap["config"]["out"] == str(whole) and snap["step"] == int(name[-6:-3]) // 8
    # The last snapshot holds the networks of the final checkpoint.pt, which is what resumes.
    last, final = checkpoint.load(whole / names[-1]), checkpoint.load(whole / checkpoint.CHECKPOINT)
    assert final["step"] == 4 and {"opt_G", "opt_D"} <= set(final["trainer"])
    assert all(networks_equal(last[k], final["trainer"][k]) for k in ("G", "G_ema", "D"))


@pytest.mark.slow  # the module's runs train
def test_each_snapshot_loads_back_as_what_was_saved(runs):
    _, whole, _, stopped = runs
    # The run stopped at step 2 saved a checkpoint there: the first snapshot must equal it.
    early = checkpoint.load(whole / "network-snapshot-000000.016.pt")
    assert all(networks_equal(early[k], stopped["checkpoint.pt"]["trainer"][k]) for k in ("G", "G_ema", "D"))
    for path in sorted(whole.glob("network-snapshot-*.pt")):
        saved = checkpoint.load(path)
        g = checkpoint.load_generator(path)
        assert not g.training and networks_equal(g.state_dict(), saved["G_ema"])
        assert networks_equal(checkpoint.load_generator(path, "G").state_dict(), saved["G"])


@pytest.mark.slow  # the module's runs train
def test_a_resumed_run_writes_the_same_snapshots(runs):
    _, whole, broken, stopped = runs
    for path in sorted(whole.glob("network-snapshot-*.pt")):
        a, b = checkpoint.load(path), checkpoint.load(broken / path.name)
        assert all(networks_equal(a[k], b[k]) for k in ("G", "G_ema", "D")) and a["step"] == b["step"]
    # The resumed run did not rewrite the snapshot it had before the stop into something else.
    first = stopped["network-snapshot-000000.016.pt"]
    assert networks_equal(first["G_ema"], checkpoint.load(broken / "network-snapshot-000000.016.pt")["G_ema"])


@pytest.mark.slow  # the module's runs train
def test_a_snapshot_is_a_teacher_and_a_generator_but_not_a_resume_point(runs, tmp_path):
    data, whole, _, _ = runs
    snap = whole / "network-snapshot-000000.016.pt"
    out = tmp_path / "stage2"
    train(preset_config(data, out, stage="patch", teacher=str(snap), kimg=0.008, patch_prob=1.0))
    teacher = checkpoint.load(out / checkpoint.CHECKPOINT)["teacher"]
    assert networks_equal(teacher, checkpoint.load(snap)["G_ema"])
    # --resume needs the optimisers and the streams: a snapshot under checkpoint.pt's name is refused.
    (out / checkpoint.CHECKPOINT).write_bytes(snap.read_bytes())
    with pytest.raises(TrainingError, match="is a network snapshot"):
        train(preset_config(data, out, stage="patch", teacher=str(snap), kimg=0.016, resume=True))


@pytest.mark.slow  # the module's runs train
def test_a_snapshot_of_another_architecture_is_refused_as_teacher(runs, tmp_path):
    data, whole, _, _ = runs
    snap = checkpoint.load(whole / "network-snapshot-000000.016.pt")
    snap["config"]["g"]["scale_cond"] = False
    checkpoint.save(tmp_path / "other.pt", snap)
    with pytest.raises(TrainingError, match="another architecture: generator scale_cond=False"):
        train(preset_config(data, tmp_path / "run", stage="patch", teacher=str(tmp_path / "other.pt")))


@pytest.mark.slow  # the module's runs train
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "other-dict"])
def test_a_damaged_snapshot_as_teacher_is_one_line_and_exit_2(runs, tmp_path, capsys, damage):
    data, whole, _, _ = runs
    good = (whole / "network-snapshot-000000.016.pt").read_bytes()
    bad = tmp_path / f"network-snapshot-{damage}.pt"
    if damage == "other-dict":
        torch.save({"G": {}, "G_ema": {}, "D": {}, "config": "not a config"}, bad)
    else:
        bad.write_bytes({"truncated": good[: len(good) // 2], "garbage": b"\x80\x02junk" * 100, "empty": b""}[damage])
    code = run_main(main, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--stage", "patch",
                           "--teacher", str(bad)])
    line = one_error_line(code, capsys.readouterr().err)
    assert f"teacher {bad} is not a training checkpoint" in line
    assert not (tmp_path / "run").exists()
