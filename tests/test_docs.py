"""Every command of the guides in docs/ runs, as written, and does what the guides say.

The guides are read in order (curation, format, training, generation) in one workspace, as a
reader following them would: a later command may use what an earlier one made. Each command
is its own test; a test runs the commands before it first when they have not run yet (so `-k`
works), and names any of them that failed. Commands marked `# needs: ...` are skipped with
that reason, but their flags are still checked against the real `--help`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from .docs_commands import REPO, Command, all_commands, guides, make_inputs, serve, write_url_lists

COMMANDS = all_commands()
KNOWN_NEEDS = {"flickr", "gpu", "cluster", "network", "browser"}
BIN = REPO / ".venv" / "bin" if (REPO / ".venv" / "bin").is_dir() else Path(sys.executable).parent
TOOLS = ("anyres-curate", "anyres-shards", "anyres-train", "anyres-generate", "anyres-eval")


def starts_ray(command: Command) -> bool:
    return (command.lang == "bash" and command.needs is None and "anyres-curate" in command.text
            and "--no-ray" not in command.text and " status " not in command.text)


def params():
    for index, command in enumerate(COMMANDS):
        marks = [pytest.mark.slow]
        if command.needs:
            marks.append(pytest.mark.skip(reason=f"needs {command.needs}"))
        if starts_ray(command):
            marks.append(pytest.mark.ray)
        yield pytest.param(index, id=command.id, marks=marks)


class Workspace:
    """The folder the commands run in, and what each command did."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.env = root, env
        self.results: dict[int, subprocess.CompletedProcess] = {}

    def run(self, index: int) -> subprocess.CompletedProcess:
        command = COMMANDS[index]
        if command.lang == "python":
            script = self.root / f".guide-snippet-{index}.py"
            script.write_text(command.text)
            argv = [str(BIN / "python"), str(script)]
        else:
            argv = ["bash", "-c", command.text]
        return subprocess.run(argv, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=600)

    def run_through(self, index: int) -> subprocess.CompletedProcess:
        for i in range(index + 1):
            if COMMANDS[i].needs is None and i not in self.results:
                self.results[i] = self.run(i)
        return self.results[index]

    def failed_before(self, index: int) -> list[str]:
        return [COMMANDS[i].id for i in range(index)
                if i in self.results and self.results[i].returncode != COMMANDS[i].exit]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, s3_server):
    root = tmp_path_factory.mktemp("guides")
    make_inputs(root)
    base, server = serve(root)
    write_url_lists(root, base)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLICKR_", "RAY_ADDRESS", "AWS_"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               XDG_CACHE_HOME=str(root / ".cache"), MPLBACKEND="Agg")
    env.update(s3_server.env())  # the guides' s3://my-bucket is a real S3 API on 127.0.0.1
    s3_server.make_bucket("my-bucket")
    yield Workspace(root, env)
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(1800)  # run alone (-k), a late command first runs every one before it
@pytest.mark.parametrize("index", list(params()))
def test_command(workspace, index):
    command = COMMANDS[index]
    result = workspace.run_through(index)
    if result.returncode != command.exit:
        earlier = workspace.failed_before(index)
        pytest.fail(f"{command.doc}:{command.line} exited {result.returncode}, not {command.exit}:\n"
                    f"{command.text}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
                    + (f"\n--- earlier commands that failed: {earlier}" if earlier else ""))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_guides_leave_what_they_promise(workspace):
    workspace.run_through(len(COMMANDS) - 1)
    root = workspace.root

    def rows(path: str) -> list[dict]:
        return pq.read_table(root / path).to_pylist()

    # curation: the card, the 404 as a reject, --exclude, and --add's larger copy with its credit
    for name in ("CARD.md", "CARD.html", "ATTRIBUTION.md", "ATTRIBUTION.csv"):
        assert (root / "ds" / name).is_file(), name
    assert [r["reason"] for r in rows("web/work/rejects.parquet")] == ["http-404"]
    assert {r["reason"] for r in rows("ds-train/work/rejects.parquet")} == {"excluded"}
    assert len(rows("ds-train/index.parquet")) == len(rows("packed/index.parquet")) - 1
    index = {r["source_id"]: r for r in rows("ds/index.parquet")}
    assert "dunes.jpg" not in index and index["dunes-large.jpg"]["license"] == "cc-by-4.0"
    assert {r["license"] for r in rows("ds-open/index.parquet")} <= {"cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0"}
    assert not any((root / "scratch").iterdir())  # the object store run's mirror, removed once published
    tsv = rows("web-tsv/index.parquet")
    assert len(tsv) == 2 and all(r["license"] and r["owner"] for r in tsv)
    # training: kept snapshots, the resumed run's ticks, metrics during training, the 360° run
    names = {p.name for p in (root / "runs" / "global").iterdir()}
    assert {"network-snapshot-000000.032.pt", "network-snapshot-000000.048.pt", "checkpoint.pt"} <= names
    ticks = [json.loads(line)["tick"] for line in (root / "runs/global/stats.jsonl").read_text().splitlines()]
    assert ticks == [1, 2, 3]
    scored = [json.loads(line) for line in (root / "runs/scored/metrics.jsonl").read_text().splitlines()]
    assert {r["metric"] for r in scored} == {"kid-full", "hf-full"}
    assert json.loads((root / "runs/pano/config.json").read_text())["g"]["fov"] == 60
    # generation and evaluation
    assert Image.open(root / "runs/patch/generated/seed0003.png").size == (128, 128)
    assert json.loads((root / "runs/patch/generated/seed0003.json").read_text())["seed"] == 3
    assert Image.open(root / "wide.jpg").size == (192, 64)
    assert Image.open(root / "big/seed0000.png").size == (256, 256)
    assert Image.open(root / "pano.png").size == (192, 32)
    assert (root / "runs/patch/zoom/zoom-seed0000.webp").is_file()
    results = [json.loads(line) for line in (root / "runs/patch/metrics.jsonl").read_text().splitlines()]
    assert {"fid-full", "fid-up", "pfid", "kid-patch", "hf-patch"} <= {r["metric"] for r in results}
    assert not any(r["comparable"] for r in results)  # EfficientNet features: never comparable
    assert (root / "runs/patch/pfid-bins.png").is_file() and (root / "runs/patch/report.html").is_file()


# Flags of the commands that cannot run here, checked against the real --help ------------------

@cache
def help_text(argv: tuple[str, ...]) -> str:
    result = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def invocations(text: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """(the program and subcommand whose --help applies, the flags given to it) for each anyres
    tool and torchrun in a command line."""
    words = shlex.split(text, comments=True)
    found, i = [], 0
    while i < len(words):
        word = words[i]
        if word in TOOLS or word == "torchrun":
            program: tuple[str, ...] = (str(BIN / word),)
            if word in ("anyres-curate", "anyres-shards", "anyres-train"):
                program += (words[i + 1],)
            flags, j = [], i + 1
            while j < len(words) and words[j] not in ("|", "&&", ";"):
                if word == "torchrun" and words[j] == "-m":  # the rest belongs to `python -m training`
                    sub = words[j + 2]
                    target = {"train": ("anyres-train", "train"), "eval": ("anyres-eval",),
                              "generate": ("anyres-generate",)}[sub]
                    found.append(((str(BIN / target[0]), *target[1:]),
                                  [w for w in words[j + 3:] if w.startswith("--")]))
                    break
                if words[j].startswith("--"):
                    flags.append(words[j].split("=", 1)[0])
                j += 1
            found.append((program, flags))
            i = j
        i += 1
    return found


SKIPPED = [c for c in COMMANDS if c.needs]


@pytest.mark.slow
@pytest.mark.parametrize("command", SKIPPED, ids=[c.id for c in SKIPPED])
def test_a_command_that_cannot_run_here_uses_real_flags(command):
    for program, flags in invocations(command.text):
        text = help_text(program)
        unknown = [f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text)]
        assert not unknown, f"{command.id}: {Path(program[0]).name} {' '.join(program[1:])} has no {unknown}"


# The guides themselves -------------------------------------------------------------------------

def test_every_guide_is_there_and_runs_commands():
    names = [p.name for p in guides()]
    assert names[:4] == ["curation.md", "format.md", "training.md", "generation.md"]
    for name in names:
        runnable = [c for c in COMMANDS if c.doc == name and not c.needs]
        assert runnable, f"docs/{name} has no command that runs"
    assert {c.needs for c in COMMANDS if c.needs} <= KNOWN_NEEDS
    assert len(SKIPPED) * 4 < len(COMMANDS), "most documented commands must run here"
    assert sum(starts_ray(c) for c in COMMANDS) <= 1, "one command may start Ray; give the others --no-ray"


def test_commands_are_split_as_a_reader_reads_them(tmp_path):
    from .docs_commands import commands

    doc = tmp_path / "guide.md"
    doc.write_text("text\n\n```bash\n# a comment\nanyres-shards info ds\n\nanyres-train train --data ds \\\n"
                   "    --out runs/x   # needs: gpu\nanyres-shards verify ds --expect 00  # exit: 1\n```\n\n"
                   "```text\nnot a command\n```\n\n```python\nprint(1)\n```\n")
    found = commands(doc)
    assert [(c.line, c.text.split("#")[0].strip(), c.needs, c.exit, c.lang) for c in found] == [
        (5, "anyres-shards info ds", None, 0, "bash"),
        (7, "anyres-train train --data ds --out runs/x", "gpu", 0, "bash"),
        (9, "anyres-shards verify ds --expect 00", None, 1, "bash"),
        (17, "print(1)", None, 0, "python"),
    ]
