"""`anyres-train train`: user errors are one line and exit 2 before any training; a short real run
through the CLI leaves a complete run folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import encode, gradient, write_dataset
from training.commands.train import main
from training.commands.train_flags import PRESET_NAMES
from training.run.config import PRESETS

from .gan_helpers import SUBPROCESS_ENV, gan_dataset, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[2]


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("anyres-train: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_preset_names_are_the_presets():
    assert set(PRESET_NAMES) == set(PRESETS)
    paper = PRESETS["sg3t-256"]
    assert (paper.batch, paper.gamma, paper.lr_g, paper.lr_d, paper.ema_kimg, paper.g.mapping_layers) == \
        (32, 2.0, 0.0025, 0.002, 10.0, 2)


def test_missing_dataset_is_one_line(capsys, tmp_path):
    err = one_line_error(capsys, ["train", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "run")])
    assert "nothing" in err
    assert not (tmp_path / "run").exists()  # stopped before the run folder was made


def test_dataset_too_small_for_the_patch_size_is_one_line(capsys, tmp_path):
    write_dataset(tmp_path / "ds", [encode(gradient(20, 24, seed=i), "PNG") for i in range(3)])
    err = one_line_error(capsys, ["train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run")])
    assert "too small" in err and "32 px" in err and "largest is 20 px" in err


def test_patch_stage_needs_a_teacher_of_the_same_architecture(capsys, tmp_path):
    data = gan_dataset(tmp_path / "ds", n=4)
    err = one_line_error(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--stage", "patch"])
    assert "--teacher" in err
    err = one_line_error(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--stage", "patch",
                                  "--teacher", str(tmp_path / "missing.pt")])
    assert "does not exist" in err


@pytest.mark.slow  # the shared tiny run trains
def test_a_teacher_of_another_architecture_is_one_line(capsys, tmp_path, tiny_run):
    # A real checkpoint of another architecture (the tests' R = 16 network against the tiny preset).
    err = one_line_error(capsys, ["train", "--data", str(tiny_run.data), "--out", str(tmp_path / "run"), "--stage",
                                  "patch", "--teacher", str(tiny_run.out / "checkpoint.pt")])
    assert "another architecture" in err and "resolution=16" in err


def test_a_run_folder_is_continued_or_refused_never_started_over(capsys, tmp_path):
    data = gan_dataset(tmp_path / "ds", n=4)
    run = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(run), "--preset", "tiny", "--kimg", "0.016", "--batch", "8",
            "--tick-kimg", "0.016", "--no-report"]
    assert main(argv) == 0
    snapshots = sorted(run.glob("network-snapshot-*.pt"))
    err = one_line_error(capsys, argv)  # again, without --resume: the old run's files would mix with the new
    assert "already holds a run" in err and "--resume" in err
    assert sorted(run.glob("network-snapshot-*.pt")) == snapshots
    assert main([*argv, "--resume"]) == 0  # finished: nothing to do, and it says so
    assert "already trained to its --kimg 0.016: nothing to do" in capsys.readouterr().out


def test_resume_without_a_checkpoint_and_bad_flags(capsys, tmp_path):
    data = gan_dataset(tmp_path / "ds", n=4)
    err = one_line_error(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--resume"])
    assert "checkpoint" in err and "does not exist" in err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--patch-prob", "1.5"])
    assert exc.value.code == 2


@pytest.mark.slow
def test_tiny_preset_trains_through_the_cli(tmp_path):
    data = gan_dataset(tmp_path / "ds", n=8)
    result = subprocess.run([sys.executable, "-m", "training", "train", "--data", str(data), "--out",
                             str(tmp_path / "run"), "--preset", "tiny", "--kimg", "0.032", "--batch", "8",
                             "--tick-kimg", "0.016", "--no-scale-cond"],
                            capture_output=True, text=True, timeout=240, cwd=REPO, env=SUBPROCESS_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]  # after a progress line per tick
    assert last.startswith("trained to 0.03 kimg") and "checkpoint.pt" in last
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["preset"] == "tiny" and config["g"]["resolution"] == 32 and config["g"]["scale_cond"] is False
    assert len((tmp_path / "run" / "stats.jsonl").read_text().splitlines()) == 2
    assert list((tmp_path / "run").glob("samples-*.png"))
    assert (tmp_path / "run" / "report.html").is_file()  # the CLI writes the run report at the end
    assert [line.split()[:2] for line in result.stdout.splitlines()[:-1] if line.startswith("tick")] == \
        [["tick", "1"], ["tick", "2"]]


@pytest.mark.slow  # the shared tiny run trains
def test_a_patch_stage_run_reads_the_index_and_the_teacher_once(tmp_path, monkeypatch, tiny_run):
    """What the checks before a run open is handed on to the run, not opened again."""
    import shards.format.reader
    from training import checkpoint
    from training.run.loop import train

    reads: list[str] = []
    read_index, load = shards.format.reader.read_index, checkpoint.load
    monkeypatch.setattr(shards.format.reader, "read_index", lambda *args: reads.append("index") or read_index(*args))
    monkeypatch.setattr(checkpoint, "load", lambda path: reads.append(Path(path).name) or load(path))
    train(tiny_config(tiny_run.data, tmp_path / "stage2", stage="patch", teacher=str(tiny_run.out / "checkpoint.pt"),
                      kimg=0.008, tick_kimg=0.008, patch_prob=1.0))
    assert sorted(reads) == ["checkpoint.pt", "index"]
