"""DESIGN.md 5: no flag value gives a traceback. Every numeric flag of `anyres-train preview` and
`anyres-train train` is tried with 0, negatives, nan, inf, huge floats and huge integers; each
call ends with exit code 2 and one error line. A value out of the flag's domain is rejected
before the dataset is opened (the dataset here does not exist, so a value that is accepted ends
in the missing-dataset error instead, also one line)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from plumbing.errors import ConfigError
from tests.cli_outcome import one_error_line, run_main
from training.commands.train import main
from training.run.config import PRESETS

BAD = ["0", "-1", "nan", "inf", "-inf", "1e308", str(10**30), ""]

# flag -> whether a value is in its domain (the values above that a user may legitimately give)
PREVIEW_FLAGS = {
    "--size": lambda v: False,
    "--s-min": lambda v: False,
    "--s-max": lambda v: False,
    "--patches-per-image": lambda v: False,
    "--min-side": lambda v: False,
    "--n": lambda v: False,
    "--seed": lambda v: v == "0",
    "--shuffle-buffer": lambda v: v == "0",
}
TRAIN_FLAGS = {
    "--kimg": lambda v: False,
    "--batch": lambda v: False,
    "--patch-prob": lambda v: v == "0",
    "--teacher-weight": lambda v: v == "0",
    "--gamma": lambda v: v == "0",
    "--lr-g": lambda v: v == "0",
    "--lr-d": lambda v: v == "0",
    "--s-min": lambda v: False,
    "--s-max": lambda v: False,
    "--tick-kimg": lambda v: False,
    "--snap": lambda v: False,
    "--snap-ticks": lambda v: False,
    "--workers": lambda v: v == "0",
    "--seed": lambda v: v == "0",
    "--ada-target": lambda v: v == "0",
    "--ada-kimg": lambda v: False,
    "--batch-gpu": lambda v: False,
    "--ema-rampup": lambda v: v == "0",
    "--grid": lambda v: False,
    "--fov": lambda v: False,  # degrees in [1, 360]: none of the values above
    "--metrics": lambda v: False,  # no metric is called 0, nan, ...
    "--metric-ticks": lambda v: False,
    "--metric-n": lambda v: False,
}


def run(capsys, argv: list[str]) -> str:
    code = run_main(main, argv)
    return one_error_line(code, capsys.readouterr().err)


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("flag", sorted(PREVIEW_FLAGS))
def test_preview_flags_never_give_a_traceback(capsys, tmp_path, flag, value):
    missing = str(tmp_path / "no-such-dataset")
    error = run(capsys, ["preview", "--data", missing, "--out", str(tmp_path / "out"), "--size", "32", flag, value])
    if not PREVIEW_FLAGS[flag](value):
        assert "no-such-dataset" not in error, error  # rejected before the dataset was opened
        assert flag in error or "s_min" in error or "s_max" in error or "patch size" in error, error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("flag", sorted(TRAIN_FLAGS))
def test_train_flags_never_give_a_traceback(capsys, tmp_path, flag, value):
    missing = str(tmp_path / "no-such-dataset")
    error = run(capsys, ["train", "--data", missing, "--out", str(tmp_path / "run"), flag, value])
    if not TRAIN_FLAGS[flag](value):
        assert "no-such-dataset" not in error and flag in error, error
    else:
        assert "cannot read dataset" in error, error
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", BAD)
def test_the_hr_dataset_flag_never_gives_a_traceback(capsys, tmp_path, value):
    """--data-hr names a dataset: any value is opened (after --data) and refused in one line."""
    from .gan_helpers import gan_dataset

    data = gan_dataset(tmp_path / "ds", n=2, size=(40, 40))
    error = run(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--stage", "patch",
                         f"--data-hr={value}"])  # '=': a value like -inf is a value, not an option
    assert "--data-hr dataset" in error, error
    assert not (tmp_path / "run").exists()
    error = run(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "run"), f"--data-hr={value}"])
    assert "--data-hr" in error and "--stage patch" in error, error  # stage global reads no patches


def test_a_patch_range_below_the_patch_size_is_one_line(capsys, tmp_path):
    # Passes every flag's own bounds, but the tiny preset's patch stream starts at S = p = 32.
    error = run(capsys, ["train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run"), "--stage", "patch",
                         "--teacher", str(tmp_path / "ckpt.pt"), "--s-max", "16", "--preset", "tiny"])
    assert "s_max 16.0 is below s_min 32" in error
    error = run(capsys, ["preview", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "--size", "32",
                         "--s-min", "64", "--s-max", "48"])
    assert "s_max 48.0 is below s_min 64" in error
    error = run(capsys, ["train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run"), "--s-min", "16"])
    assert "s_min 16.0 is below the patch size 32" in error


@pytest.mark.parametrize("setting", ["kimg", "tick_kimg", "lr_g", "lr_d", "gamma", "teacher_weight", "ema_kimg"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_the_config_tree_rejects_what_no_setting_means(setting, value):
    """Library callers skip the flag parsers; the config still stops a value that would overflow
    a step count or turn the weights into nan, with a ConfigError (a one-line user error)."""
    with pytest.raises(ConfigError, match=setting):
        dataclasses.replace(PRESETS["tiny"], **{setting: value})
