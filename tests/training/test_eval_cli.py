"""`anyres-eval` end to end: a snapshot or a whole run scored with the offline EfficientNet (or the
FID Inception filled from a state dict), results appended to metrics.jsonl; every bad input
(snapshot, dataset, metric, size, feature file, a feature file that is a program, any numeric
flag value) one line and exit 2. And the check that the
metrics measure something: a tiny model trained a few hundred steps beats its initialisation."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from tests.cli_outcome import check_flag_outcome, one_error_line, run_main
from training import checkpoint
from training.commands.eval import main
from training.run.loop import train
from training.run.trainer import Trainer

from .eval_helpers import write_snapshots
from .gan_helpers import gan_dataset, tiny_config
from .weight_helpers import inception_state, save, writing_program

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = ["--feature-side", "32", "--n", "8", "--batch", "8"]  # EfficientNet at 32 px: a second per set


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalcli")
    data = gan_dataset(root / "data", n=12)
    paths = write_snapshots(data, root / "run", (0.0, 0.05))
    return data, root / "run", paths


def read_rows(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_a_snapshot_is_scored_and_its_results_appended_to_the_run_folder(run, tmp_path, capsys):
    data, folder, paths = run
    argv = [str(paths[0]), "--data", str(data), "--metrics", "kid,hf-patch", "--cache", str(tmp_path), *FAST]
    assert run_main(main, argv) == 0
    out = capsys.readouterr().out
    assert "efficientnet-lite0@32" in out and "not comparable with published" in out
    rows = read_rows(folder)
    assert [r["metric"] for r in rows] == ["kid-full", "hf-patch"]
    for r in rows:
        assert r["snapshot"] == str(paths[0]) and r["kimg"] == 0 and r["n"] == 8
        assert r["network"].startswith("efficientnet-lite0@32:") and r["comparable"] is False
    assert rows[0]["std"] >= 0 and rows[1]["real"] > 0
    assert run_main(main, argv) == 0  # a second call appends, and reads the real sets from the cache
    assert len(read_rows(folder)) == 4 and read_rows(folder)[2:] == rows


def test_a_run_folder_scores_every_snapshot_and_names_the_best(run, tmp_path, capsys):
    data, folder, paths = run
    out_dir = tmp_path / "out"
    argv = [str(folder), "--data", str(data), "--metrics", "kid-patch", "--no-cache", "--out", str(out_dir), *FAST]
    assert run_main(main, argv) == 0
    rows = read_rows(out_dir)
    assert [r["snapshot"] for r in rows] == [str(p) for p in paths]
    assert [r["kimg"] for r in rows] == [0, 0.08]
    best = min(rows, key=lambda r: r["value"])["snapshot"]
    assert f"best snapshot by kid-patch: {best}" in capsys.readouterr().out


@pytest.mark.slow  # more than a few seconds
def test_an_inception_state_dict_scores_under_a_name_with_its_hash(run, tmp_path):
    data, _, paths = run
    path = save(inception_state(), tmp_path / "pt_inception.pth")
    argv = [str(paths[0]), "--data", str(data), "--metrics", "kid", "--inception", str(path), "--no-cache",
            "--out", str(tmp_path), "--n", "4"]
    assert run_main(main, argv) == 0
    (row,) = read_rows(tmp_path)
    assert row["network"] == f"fid-inception-v3:unpublished:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    assert row["comparable"] is False  # not the published weights: not comparable with published KIDs


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_a_feature_file_that_is_a_program_is_refused_and_never_runs(run, tmp_path, capsys):
    data, _, paths = run
    path, target = writing_program(tmp_path)
    argv = [str(paths[0]), "--data", str(data), "--metrics", "kid", "--inception", str(path), "--no-cache",
            "--out", str(tmp_path / "out"), *FAST]
    line = one_error_line(run_main(main, argv), capsys.readouterr().err)
    assert "is a TorchScript or torch.export program, which anyres never runs" in line
    assert "pt_inception-2015-12-05-6726825d.pth" in line  # what to give instead
    assert not target.exists() and not (tmp_path / "out").exists()


def test_spectra_per_scale_are_written_with_their_plot(run, tmp_path, capsys):
    data, _, paths = run
    argv = [str(paths[0]), "--data", str(data), "--metrics", "spectrum-patch,spectrum-patch-up", "--s-min", "32",
            "--s-max", "32", "--no-cache", "--out", str(tmp_path), *FAST]
    assert run_main(main, argv) == 0
    assert "spectrum.png" in capsys.readouterr().out
    rendered, upsampled = read_rows(tmp_path)
    for row, kind in ((rendered, "patch"), (upsampled, "patch-lanczos")):
        assert row["fake"] == kind and row["bin"] == "[2,4)" and row["n"] == 8  # R = 16, S = 32
        assert row["bands"] == [[1 / 16, 1 / 8], [1 / 8, 1 / 4], [1 / 4, 1 / 2]]
        assert len(row["band_real"]) == len(row["band_fake"]) == 3 and min(row["band_real"]) > 0
        assert row["band_ratio"] == pytest.approx([f / r for f, r in zip(row["band_fake"], row["band_real"])])
        assert row["value"] == row["band_ratio"][-1] and row["comparable"] is False
    assert upsampled["imaging_from"] == 16 / (2 * 32) and "imaging_from" not in rendered
    assert (tmp_path / "spectrum.png").stat().st_size > 5000


def bad_inputs(tmp_path, data, snapshot):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    state_dict = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(3)}, state_dict)
    empty = tmp_path / "empty-run"
    empty.mkdir()
    s, d = str(snapshot), str(data)
    return {
        "missing snapshot": ([str(tmp_path / "nope.pt"), "--data", d], "does not exist"),
        "garbage snapshot": ([str(garbage), "--data", d], "is not a training checkpoint"),
        "run without snapshots": ([str(empty), "--data", d], "holds no network-snapshot"),
        "missing dataset": ([s, "--data", str(tmp_path / "no-data")], "cannot read --data dataset"),
        "unknown metric": ([s, "--data", d, "--metrics", "fid-full,is"], "unknown metric is"),
        "no metric": ([s, "--data", d, "--metrics", ","], "unknown metric"),
        "odd size": ([s, "--data", d, "--size", "17"], "not a multiple of 2"),
        "size below R": ([s, "--data", d, "--size", "8"], "below the generator's base resolution"),
        "size above the data": ([s, "--data", d, "--size", "1024", "--feature-side", "32"], "no image of"),
        "n of one": ([s, "--data", d, "--n", "1"], "argument --n"),
        "garbage feature file": ([s, "--data", d, "--inception", str(garbage)],
                                 "is not a state dict saved by torch.save"),
        "state dict as feature file": ([s, "--data", d, "--inception", str(state_dict)],
                                       "lacks 472 of the 472 tensors of the FID Inception-v3"),
        "missing feature file": ([s, "--data", d, "--inception", str(tmp_path / "x.pt")], "does not exist"),
        "s-max below s-min": ([s, "--data", d, "--metrics", "pfid", "--s-min", "32", "--s-max", "20",
                               "--feature-side", "32"], "below S_min"),
    }


CASES = ["missing snapshot", "garbage snapshot", "run without snapshots", "missing dataset", "unknown metric",
         "no metric", "odd size", "size below R", "size above the data", "n of one", "garbage feature file",
         "state dict as feature file", "missing feature file", "s-max below s-min"]


@pytest.mark.parametrize("case", CASES)
def test_bad_inputs_are_one_line_and_exit_2(run, tmp_path, capsys, case):
    data, _, paths = run
    argv, message = bad_inputs(tmp_path, data, paths[0])[case]
    code = run_main(main, [*argv, "--no-cache", "--out", str(tmp_path / "out")])
    line = one_error_line(code, capsys.readouterr().err)
    assert message in line
    assert not (tmp_path / "out" / "metrics.jsonl").exists()


BAD = ["0", "-1", "nan", "inf", "-inf", "1e308", str(10**30), ""]
FLAGS = {  # flag -> whether the value is a setting a user may give
    "--size": lambda v: False, "--n": lambda v: False, "--seed": lambda v: v == "0", "--s-min": lambda v: False,
    "--s-max": lambda v: False, "--feature-side": lambda v: False, "--batch": lambda v: False,
    "--tile": lambda v: False, "--kid-subsets": lambda v: False,
}


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_flag_values_never_give_a_traceback(tmp_path, capsys, flag, value):
    # The snapshot does not exist: a value the flag accepts ends in that one-line error instead.
    code = run_main(main, [str(tmp_path / "none.pt"), "--data", str(tmp_path), flag, value])
    check_flag_outcome(code, capsys.readouterr().err, flag, FLAGS[flag](value))


@pytest.mark.slow
def test_a_tiny_model_trained_a_few_hundred_steps_beats_its_initialisation_on_kid(tmp_path, capsys):
    data = gan_dataset(tmp_path / "data", n=24)
    cfg = tiny_config(data, tmp_path / "run", kimg=2.4, tick_kimg=2.4, snap_ticks=1)  # 300 steps of 8
    trainer = Trainer(cfg, torch.device("cpu"))  # seeded like the run's own: its initial networks
    (tmp_path / "run").mkdir()
    init = tmp_path / "run" / "network-snapshot-000000.pt"
    checkpoint.save(init, checkpoint.snapshot_state({"trainer": trainer.state_dict(), "config": cfg.to_dict(),
                                                     "step": 0}))
    train(cfg)
    # EfficientNet at its own 224 px: at 64 px its features rank this pair the other way round.
    argv = [str(tmp_path / "run"), "--data", str(data), "--metrics", "kid,hf-full", "--n", "48", "--no-cache"]
    assert run_main(main, argv) == 0
    rows = {(r["kimg"], r["metric"]): r for r in read_rows(tmp_path / "run")}
    before, after = rows[0, "kid-full"], rows[2.4, "kid-full"]
    assert after["value"] < before["value"] - 2 * max(before["std"], after["std"]), (before, after)
    assert "best snapshot by kid-full" in capsys.readouterr().out
    # The initial network's images are nearly flat; trained ones have real high-frequency energy.
    assert rows[0, "hf-full"]["value"] < rows[2.4, "hf-full"]["value"] < rows[2.4, "hf-full"]["real"]
