"""`anyres-train train --metrics ... --metric-ticks N`: snapshots scored as they are written.

Each metric tick writes a snapshot, appends anyres-eval's rows for it to RUN/metrics.jsonl and
adds the values to that tick's stats line; the real sets are drawn once per run. Evaluating
must not touch training: a run with metrics trains bit for bit like one without, and a resumed
one like an uninterrupted one. A metric name nobody knows ends the command in one line, exit 2.
The feature network is eval_helpers' stand-in (EfficientNet at 224 px is ~0.2 s an image)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from plumbing.errors import ConfigError
from tests.cli_outcome import one_error_line, run_main
from training import checkpoint
from training.commands.eval import load
from training.commands.train import main
from training.errors import TrainingError
from training.eval.cache import StatsCache
from training.eval.metrics import EvalConfig, Evaluator
from training.run import measure
from training.run.config import PRESETS
from training.run.loop import train
from training.run.validate import open_dataset

from .eval_helpers import CountingFeatures
from .gan_helpers import gan_dataset, tiny_config

TRAINING_KEYS = ("step", "kimg", "loss_G", "loss_D", "D_real", "D_fake", "R1", "aug_p", "loader")
METRICS = ("kid", "hf-patch")  # KID at R and the patch proxy: a full and a patch real set


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same tiny run (4 ticks of 5 steps, snapshots every 2) with metrics every tick, without
    metrics, and with metrics stopped after 2 ticks and resumed."""
    root = tmp_path_factory.mktemp("metricrun")
    data = gan_dataset(root / "data", n=12)
    features: list[CountingFeatures] = []

    def stand_in(device):
        features.append(CountingFeatures())
        return features[-1]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))  # the eval cache, kept out of the home folder
        mp.setattr(measure, "feature_net", stand_in)
        base = tiny_config(data, root / "plain", kimg=0.16, tick_kimg=0.04, snap_ticks=2)
        scored = dataclasses.replace(base, out=str(root / "scored"), metrics=METRICS, metric_ticks=1, metric_n=8)
        train(base)
        train(scored)
        first = dataclasses.replace(scored, out=str(root / "resumed"), kimg=0.08)
        train(first)
        train(dataclasses.replace(first, kimg=0.16, resume=True))
    torch.set_num_threads(threads)
    return data, root, features


@pytest.mark.slow  # trains
def test_every_metric_tick_scores_its_snapshot_into_metrics_jsonl_and_the_stats(runs):
    data, root, features = runs
    run = root / "scored"
    rows = read_jsonl(run / "metrics.jsonl")
    kimgs = [0.04, 0.08, 0.12, 0.16]
    assert [(r["kimg"], r["metric"]) for r in rows] == [(k, m) for k in kimgs for m in ("kid-full", "hf-patch")]
    stats = read_jsonl(run / "stats.jsonl")
    assert [s["kimg"] for s in stats] == kimgs
    for s, (kid, hf) in zip(stats, zip(rows[::2], rows[1::2])):
        assert s["metric/kid-full"] == kid["value"] and s["metric/hf-patch"] == hf["value"]
        assert kid["snapshot"] == hf["snapshot"] == str(run / checkpoint.snapshot_name(round(s["kimg"] * 1000)))
        assert kid["n"] == 8 and kid["network"] == "counting-test-features" and "std" in kid and "real" in hf
    # A metric tick writes its snapshot even between --snap ticks, so anyres-eval can score it again.
    assert sorted(p.name for p in run.glob("network-snapshot-*.pt")) == [
        checkpoint.snapshot_name(k) for k in (40, 80, 120, 160)]
    # The real sets (full and patch) were drawn once, at the start, and cached where anyres-eval looks.
    assert len(list((root / "cache" / "anyres" / "eval").glob("real-*.npz"))) == 2
    # The rows are the snapshot's own scores: anyres-eval's Evaluator on the saved G_ema agrees.
    g, run_config, kimg = load(run / checkpoint.snapshot_name(120))
    evaluator = Evaluator(open_dataset(str(data)), CountingFeatures(), EvalConfig(("kid-full",), n=8),
                          StatsCache(None))
    (again,) = evaluator.score(g, run_config)
    assert kimg == 0.12 and again["value"] == rows[4]["value"]


@pytest.mark.slow  # trains
def test_evaluating_does_not_perturb_training(runs):
    _, root, _ = runs
    plain, scored = read_jsonl(root / "plain" / "stats.jsonl"), read_jsonl(root / "scored" / "stats.jsonl")
    assert len(plain) == len(scored) == 4
    for a, b in zip(plain, scored):
        assert {k: a[k] for k in TRAINING_KEYS} == {k: b[k] for k in TRAINING_KEYS}
        assert not any(k.startswith("metric/") for k in a)
    a = checkpoint.read(root / "plain" / checkpoint.CHECKPOINT, "checkpoint")["trainer"]
    b = checkpoint.read(root / "scored" / checkpoint.CHECKPOINT, "checkpoint")["trainer"]
    for net in ("G", "G_ema", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net


@pytest.mark.slow  # trains
def test_a_resumed_run_scores_like_an_uninterrupted_one(runs):
    _, root, _ = runs
    whole, resumed = read_jsonl(root / "scored" / "stats.jsonl"), read_jsonl(root / "resumed" / "stats.jsonl")
    keys = TRAINING_KEYS + ("metric/kid-full", "metric/hf-patch")
    assert [{k: r[k] for k in keys} for r in whole] == [{k: r[k] for k in keys} for r in resumed]
    strip = [{k: v for k, v in r.items() if k != "snapshot"} for r in read_jsonl(root / "scored" / "metrics.jsonl")]
    again = [{k: v for k, v in r.items() if k != "snapshot"} for r in read_jsonl(root / "resumed" / "metrics.jsonl")]
    assert strip == again


@pytest.mark.slow  # trains
def test_a_metric_the_data_cannot_serve_ends_the_run_before_its_first_step(runs, tmp_path, monkeypatch):
    data, _, _ = runs
    monkeypatch.setattr(measure, "feature_net", lambda device: CountingFeatures())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cfg = tiny_config(data, tmp_path / "run", metrics=("kid-patch",), metric_n=8)
    # Stage global checks no patch side, but kid-patch draws patches at S >= 64 from 64 x 48 images.
    cfg = dataclasses.replace(cfg, loader=dataclasses.replace(
        cfg.loader, stream=dataclasses.replace(cfg.loader.stream, s_min=64.0)))
    with pytest.raises(TrainingError, match="has a shorter side of at least 64 px"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_the_flags_reach_the_config(tmp_path):
    from training.commands.train import build_parser
    from training.commands.train_flags import config_from_args

    common = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")]
    cfg = config_from_args(build_parser().parse_args(common))
    assert cfg.metrics == () and cfg.metric_n == 64 and cfg.metric_interval == cfg.snap_ticks == 10
    args = build_parser().parse_args([*common, "--preset", "sg3t-256", "--metrics", "kid-patch,fid", "--metric-ticks",
                                      "3", "--metric-n", "50"])
    cfg = config_from_args(args)
    assert (cfg.metrics, cfg.metric_interval, cfg.metric_n) == (("kid-patch", "fid-full"), 3, 50)
    assert PRESETS["sg3t-256"].metric_n == 1000


@pytest.mark.parametrize("value, message", [("kid,is", "unknown metric is"), (",", "(none given)"),
                                            ("fid-ful", "known: fid-full")])
def test_an_unknown_metric_is_one_line_and_exit_2(capsys, tmp_path, value, message):
    code = run_main(main, ["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "run"),
                           "--metrics", value])
    line = one_error_line(code, capsys.readouterr().err)
    assert "--metrics" in line and message in line, line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("setting, value, message", [("metrics", ("kid", "is"), "unknown metric is; known: fid-full"),
                                                     ("metric_ticks", 0, "metric_ticks"), ("metric_n", 1, "metric_n")])
def test_the_config_refuses_what_library_callers_pass(setting, value, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(PRESETS["tiny"], **{setting: value})
    assert dataclasses.replace(PRESETS["tiny"], metrics=("kid",)).metrics == ("kid-full",)
