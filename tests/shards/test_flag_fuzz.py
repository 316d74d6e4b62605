"""Every numeric flag of every `anyres-shards` command, given 0, -1, nan, inf, 1e308, 10**30 and an
empty string (DESIGN.md 5): a value that is a setting gives a normal result; any other is
refused at the flag, by argparse, with exit code 2 and one error line, before a dataset is read.
"""

from __future__ import annotations

import pytest

from shards.tools.cli import main
from tests.cli_outcome import check_flag_outcome, run_main
from tests.factories import encode, gradient, make_dataset

VALUES = ["0", "-1", "nan", "inf", "1e308", str(10**30), ""]

LS = ["ls", "{ds}"]
SUBSET = ["subset", "{ds}", "{tmp}/sub"]
GRID = ["grid", "{ds}", "-o", "{tmp}/g.png"]
PACK = ["pack", "{photos}", "{tmp}/packed"]

# (command, flag, the fuzz values that are settings of that flag)
FLAGS = [
    (LS, "--min-side", {"0"}),
    (LS, "--max-side", {"0"}),
    (LS, "--min-megapixels", {"0"}),
    (LS, "--limit", {"0"}),
    (SUBSET, "--min-side", {"0"}),
    (SUBSET, "--max-side", {"0"}),
    (SUBSET, "--min-megapixels", {"0"}),
    (SUBSET, "--shard-size", set()),
    (GRID, "--n", set()),
    (GRID, "--seed", {"0", str(10**30)}),
    (GRID, "--thumb", set()),
    (PACK, "--min-side", {"0"}),
    (PACK, "--max-pixels", set()),
    (PACK, "--shard-size", set()),
]

CASES = [pytest.param(command, flag, value, value in accepted,
                      id=f"{command[0]}{flag}={value if len(value) < 8 else '1e30'}")
         for command, flag, accepted in FLAGS for value in VALUES]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    ds = tmp_path_factory.mktemp("fuzz") / "ds"
    make_dataset(ds, n=4)
    photos = tmp_path_factory.mktemp("photos")
    for i in range(2):
        (photos / f"img{i}.jpg").write_bytes(encode(gradient(80, 60, seed=i)))
    return {"ds": ds, "photos": photos}


@pytest.mark.parametrize(("command", "flag", "value", "is_setting"), CASES)
def test_numeric_flag_values(places, tmp_path, capsys, command, flag, value, is_setting):
    argv = [part.format(tmp=tmp_path, **places) for part in command] + [f"{flag}={value}"]
    code = run_main(main, argv)  # an exception escaping main would be a traceback: the test fails
    check_flag_outcome(code, capsys.readouterr().err, flag, is_setting)
