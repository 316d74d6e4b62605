"""anyres-generate's bad calls (DESIGN.md 5): every flag fuzzed with 0, negatives, nan, inf, huge
and empty values, bad snapshots, seeds, sizes and combinations. Each ends in exit code 2 and one
line; a value out of a flag's domain is refused at the flag, before the snapshot is read."""

from __future__ import annotations

import pytest
import torch

from tests.cli_outcome import check_flag_outcome, one_error_line, run_main
from training.commands.generate import main
from training.generate.seeds import parse_seeds

from .generate_helpers import save_snapshot

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks run fastest on one thread

BAD = ["0", "-1", "nan", "inf", "-inf", "1e308", str(10**30), ""]
# flag -> whether a value is a setting (then the call goes on, to the missing snapshot)
FLAGS = {
    "--seeds": lambda v: v == "0",
    "--psi": lambda v: v == "0",
    "--size": lambda v: False,
    "--width": lambda v: False,
    "--height": lambda v: False,
    "--tile": lambda v: False,
    "--batch": lambda v: False,
    "--zoom-center": lambda v: False,
    "--zoom-to": lambda v: False,
    "--frames": lambda v: False,
    "--frame-size": lambda v: False,
    "--fps": lambda v: False,
}
ZOOM = {"--zoom-center", "--zoom-to", "--frames", "--frame-size", "--fps"}


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    return save_snapshot(tmp_path_factory.mktemp("flags") / "network-snapshot-000000.pt")


def refused(capsys, argv: list) -> str:
    code = run_main(main, [str(a) for a in argv])
    return one_error_line(code, capsys.readouterr().err)


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_no_flag_value_gives_a_traceback(capsys, tmp_path, flag, value):
    missing = tmp_path / "no-such-snapshot.pt"
    argv = [str(missing), "--out", str(tmp_path / "out"), flag, value] + (["--zoom"] if flag in ZOOM else [])
    code = run_main(main, argv)
    err = capsys.readouterr().err
    check_flag_outcome(code, err, flag, is_setting=FLAGS[flag](value))
    line = one_error_line(code, err)  # a setting, too, ends in one line: the missing snapshot's
    assert ("does not exist" in line) == FLAGS[flag](value), line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", ["", "5-3", "-1", "x", "1e99", "1,,2", "0-99999999999", "4294967296", "1-", " , "])
def test_bad_seed_lists_are_refused(capsys, tmp_path, text):
    assert "argument --seeds" in refused(capsys, [tmp_path / "s.pt", "--out", tmp_path / "o", "--seeds", text])


def test_seed_lists():
    assert parse_seeds("0-3,42") == [0, 1, 2, 3, 42]
    assert parse_seeds(" 7 , 2-3,3,7") == [7, 2, 3]  # order kept, repeats dropped
    assert parse_seeds("4294967295") == [2**32 - 1]
    assert len(parse_seeds("0-99999")) == 100_000


def test_bad_snapshots_are_one_line(capsys, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(save_snapshot(tmp_path / "whole.pt").read_bytes()[:5000])
    for path, says in [(tmp_path / "missing.pt", "does not exist"), (garbage, "not a training checkpoint"),
                       (other, "not a training checkpoint"), (truncated, "not a training checkpoint"),
                       (tmp_path, "does not exist")]:
        line = refused(capsys, [path, "--out", tmp_path / "out"])
        assert says in line and str(path.name) in line, line
    assert not (tmp_path / "out").exists()


CALLS = [
    (["--size", "64", "--width", "80"], "not both"),
    (["--width", "65535", "--height", "65535"], "more than 2147483648 pixels"),
    (["--size", "70000"], "argument --size"),
    (["--size", "20000", "--format", "jpg"], "assembled in memory"),
    (["--size", "17000", "--format", "webp"], "more than"),
    (["--width", "16384", "--height", "100", "--format", "webp"], "16383"),
    (["--size", "64", "--tile", "33"], "size step 2"),
    (["--zoom", "--frame-size", "33"], "size step 2"),
    (["--zoom", "--frame-size", "64", "--zoom-to", "32"], "below the frame size"),
    (["--zoom", "--frames", "3600", "--frame-size", "4096"], "fewer frames"),
    (["--zoom", "--size", "64"], "--size does not apply"),
    (["--frames", "10"], "--frames applies to --zoom only"),
    (["--zoom-center", "0.1,0.2"], "--zoom-center applies to --zoom only"),
    (["--zoom", "--zoom-center", "1,0"], "argument --zoom-center"),
    (["--zoom", "--zoom-center", "0.1"], "argument --zoom-center"),
    (["--zoom", "--zoom-center", "a,b"], "argument --zoom-center"),
    (["--psi", "2.5"], "argument --psi"),
    (["--format", "gif"], "argument --format"),
    (["--device", "tpu"], "argument --device"),
]


@pytest.mark.parametrize("flags, says", CALLS)
def test_bad_combinations_are_one_line_before_anything_is_written(capsys, snapshot, tmp_path,
                                                                  flags, says):
    line = refused(capsys, [snapshot, "--out", tmp_path / "out", *flags])
    assert says in line, line
    assert not (tmp_path / "out").exists()


def test_bad_outputs_are_one_line(capsys, snapshot, tmp_path):
    (tmp_path / "file").write_text("x")
    assert "is not a folder" in refused(capsys, [snapshot, "--out", tmp_path / "file" / "out"])
    assert "one image" in refused(capsys, [snapshot, "--out", tmp_path / "x.png", "--seeds", "1-2"])
    assert "contradicts" in refused(capsys, [snapshot, "--out", tmp_path / "x.png", "--format", "jpg"])
    assert "must be a folder" in refused(capsys, [snapshot, "--out", tmp_path / "x.webp", "--zoom"])
    assert not list(tmp_path.glob("x.*"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_device_is_one_line(capsys, snapshot, tmp_path):
    assert "no CUDA device" in refused(capsys, [snapshot, "--out", tmp_path / "out", "--device", "cuda"])
