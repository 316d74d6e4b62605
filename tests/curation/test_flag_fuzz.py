"""Every numeric flag of `anyres-curate`, given 0, -1, nan, inf, 1e308, 10**30 and an empty string
(DESIGN.md 5): a value that is a setting gives a normal result (a run, or one error line about
the run); any other is refused at the flag by argparse, exit code 2 and one error line, before
any input is read or Ray starts. `folder`, `urls`, `flickr` and `flickr-ids` share the run and
API flags, so each flag is tried on one command that uses it.
"""

from __future__ import annotations

import socket

import pytest

from curation.cli import main
from tests.cli_outcome import check_flag_outcome, run_main
from tests.factories import encode, gradient

VALUES = ["0", "-1", "nan", "inf", "1e308", str(10**30), ""]
HUGE = str(10**30)

FOLDER = ["folder", "{photos}", "--out", "{tmp}/o", "--no-ray", "--min-side=16"]
URLS = ["urls", "{urls}", "--out", "{tmp}/o", "--no-ray", "--min-side=16"]
# A Flickr endpoint that refuses connections: a setting that passes the flags ends in one line.
FLICKR = ["flickr", "--text", "x", "--out", "{tmp}/o", "--no-ray", "--credentials", "{credentials}",
          "--endpoint", "http://127.0.0.1:{port}/rest", "--api-retries=0"]

# (command, flag, the fuzz values that are settings of that flag)
FLAGS = [
    (FOLDER, "--min-side", set()),
    (FOLDER, "--max-pixels", set()),
    (FOLDER, "--max-aspect", set()),
    (FOLDER, "--max-bytes", set()),
    (FOLDER, "--dedup-radius", {"0"}),
    (FOLDER, "--align-radius", {"0"}),
    (FOLDER, "--align-threshold", set()),
    (FOLDER, "--dedup", set()),  # a choice: every number is refused
    (FOLDER, "--workers", set()),
    (FOLDER, "--slice-size", set()),
    (FOLDER, "--shard-size", set()),
    (URLS, "--timeout", set()),
    (URLS, "--connect-timeout", set()),
    (URLS, "--retries", {"0"}),
    (URLS, "--backoff", set()),
    (URLS, "--threads", set()),
    (URLS, "--per-host", set()),
    (FLICKR, "--max-photos", set()),
    (FLICKR, "--per-page", set()),
    (FLICKR, "--result-cap", set()),
    (FLICKR, "--min-upload-date", {"0"}),
    (FLICKR, "--max-upload-date", {"0"}),
    (FLICKR, "--calls-per-hour", set()),
    (FLICKR, "--api-retries", {"0"}),
    (FLICKR, "--api-backoff", {"0"}),
]

CASES = [pytest.param(command, flag, value, value in accepted,
                      id=f"{command[0]}{flag}={value if value != HUGE else '1e30'}")
         for command, flag, accepted in FLAGS for value in VALUES]


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    photos = root / "photos"
    photos.mkdir()
    for i in range(2):
        (photos / f"img{i}.jpg").write_bytes(encode(gradient(80, 60, seed=i)))
    urls = root / "list.txt"  # nothing listens there: each URL becomes a reject, quickly
    urls.write_text("".join(f"http://127.0.0.1:{refused_port()}/img{i}.jpg\n" for i in range(2)))
    credentials = root / "credentials"
    credentials.write_text("FLICKR_API_KEY=k\nFLICKR_API_SECRET=s\n")
    return {"photos": photos, "urls": urls, "credentials": credentials, "port": refused_port()}


@pytest.mark.parametrize(("command", "flag", "value", "is_setting"), CASES)
def test_numeric_flag_values(places, tmp_path, capsys, command, flag, value, is_setting):
    argv = [part.format(tmp=tmp_path, **places) for part in command] + [f"{flag}={value}"]
    code = run_main(main, argv)  # an exception escaping main would be a traceback: the test fails
    check_flag_outcome(code, capsys.readouterr().err, flag, is_setting)
