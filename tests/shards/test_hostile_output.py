"""Hostile datasets, continued: what commands write and print, and pinning a dataset by its
root hash (`verify --expect`), including datasets written before pinning existed."""

from __future__ import annotations

import json

import pytest

from shards.format.tario import BLOCK
from shards.tools.cli import main
from tests.factories import make_dataset

from . import hostile
from .hostile import (
    SHARD0,
    index_rows,
    make_world,
    member,
    read_manifest,
    rebuild,
    repin,
    shard_blobs,
    write_index,
    write_manifest,
)
from .test_hostile import _first_row, json_member, meta_json, run_cli


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path)

# --- output: names, symlinks, terminal --------------------------------------------------------


def test_show_names_the_file_from_the_key_and_the_index(world, capsys):
    root, out, outside = world
    rows = index_rows(root)
    key = rows[0]["key"]
    code, _, _ = run_cli(capsys, "show", root, key, "-o", out)
    assert code == 0 and [p.name for p in out.iterdir()] == [f"{key}.{rows[0]['ext']}"]
    # A consistent dataset whose sample claims to be a Python file: refused, not written.
    json_member(meta_json(root, ext="py"))(root)
    blobs = shard_blobs(root)
    blobs[0] = member(f"{key}.py", blobs[0][BLOCK : BLOCK + rows[0]["nbytes"]])
    rebuild(root, blobs)
    write_index(root, [{**r, "ext": "py"} if r["key"] == key else r for r in index_rows(root)])
    code, _, err = run_cli(capsys, "show", root, key, "-o", outside)
    assert code == 2 and "not an image type" in err
    assert (outside / "conftest.py").read_text() == "# the user's own file\n"


def test_atomic_write_refuses_a_planted_tmp_symlink(world, capsys):
    root, out, outside = world
    row = index_rows(root)[0]
    target = out / f"{row['key']}.{row['ext']}"
    (out / (target.name + ".tmp")).symlink_to(outside / "conftest.py")
    code, _, _ = run_cli(capsys, "show", root, row["key"], "-o", out)
    assert code == 0 and target.is_file() and not target.is_symlink()
    assert (outside / "conftest.py").read_text() == "# the user's own file\n"
    assert not (out / (target.name + ".tmp")).exists()


def test_dataset_text_is_escaped_and_never_markup(world, capsys):
    root, _, _ = world
    evil = "\x1b[2J\x1b[1;1HOK: all good\x07 [bold red]markup[/] [link=file:///etc/passwd]x[/link]\u202e"
    rows = index_rows(root)
    json_member(meta_json(root, license=evil))(root)
    rows = index_rows(root)
    rows_sorted = sorted(rows, key=lambda r: r["offset"])
    write_index(root, [{**r, "license": evil} if r["key"] == rows_sorted[0]["key"] else r for r in rows])
    doc = read_manifest(root)
    doc.update(name=evil, curation={"tool": evil, "counts": {evil: evil}, "rejects": {evil: 3},
                                    "dedup": {"removed": evil, evil: [evil]}}, derived_from={"name": evil})
    write_manifest(root, doc)
    code, printed, _ = run_cli(capsys, "info", root)
    assert code == 0 and "[bold red]markup[/]" in printed and "\\x1b[2J" in printed
    code, printed, _ = run_cli(capsys, "ls", root)
    assert code == 0 and "\\x1b[2J" in printed
    code, printed, _ = run_cli(capsys, "show", root, rows_sorted[0]["key"])
    assert code == 0 and json.loads(printed)["license"] == evil  # escaped, and still valid JSON
    write_index(root, [{**r, "shard": "shards/\x1b[2Jx.tar"} for r in index_rows(root)])
    code, printed, _ = run_cli(capsys, "verify", root)
    assert code == 1 and "\\x1b[2Jx.tar" in printed


# --- deep verify: what training uses ----------------------------------------------------------


def test_legacy_dataset_still_verifies_and_is_told_how_to_pin(world, capsys):
    root, _, _ = world
    doc = read_manifest(root)
    recorded = doc.pop("root_hash")
    for entry in doc["shards"]:
        del entry["sha256"]
    write_manifest(root, doc)
    code, printed, err = run_cli(capsys, "verify", root)
    assert code == 0 and printed.startswith("OK") and f"root hash {recorded}" in printed
    assert f"--expect {recorded}" in err and "anyres-shards subset" in err
    assert run_cli(capsys, "verify", root, "--expect", recorded)[0] == 0
    code, printed, _ = run_cli(capsys, "info", root)
    assert code == 0 and "not recorded" in printed


def test_verify_expect_pins_the_dataset(world, capsys, tmp_path):
    root, _, _ = world
    root_hash = read_manifest(root)["root_hash"]
    code, printed, _ = run_cli(capsys, "info", root)
    assert root_hash in printed
    code, printed, _ = run_cli(capsys, "verify", root, "--expect", root_hash)
    assert code == 0 and "root hash as expected" in printed
    assert run_cli(capsys, "verify", root, "--expect", "0" * 64)[0] == 1
    # One byte, re-pinned so that the dataset is consistent in itself: only --expect can tell.
    path = root / SHARD0
    data = bytearray(path.read_bytes())
    data[-1] = 1  # inside the end-of-archive, which no sample check looks at
    path.write_bytes(bytes(data))
    repin(root)
    code, printed, _ = run_cli(capsys, "verify", root, "--expect", root_hash)
    assert code == 1 and f"is not the expected {root_hash}" in printed
    # One row fewer.
    other = tmp_path / "rows"
    make_dataset(other, n=4)
    rows = index_rows(other)
    write_index(other, rows[:-1])
    doc = read_manifest(other)
    doc["num_samples"] -= 1
    write_manifest(other, doc)
    assert run_cli(capsys, "verify", other, "--expect", root_hash)[0] == 1
    # One shard more, listed and pinned.
    other = tmp_path / "shards"
    make_dataset(other, n=4)
    (other / "shards/shard-000001.tar").write_bytes(b"\0" * 1024)
    doc = read_manifest(other)
    doc["shards"].append({"name": "shards/shard-000001.tar", "num_samples": 0, "nbytes": 1024})
    doc.update(num_shards=2, total_bytes=doc["total_bytes"] + 1024)
    write_manifest(other, doc)
    repin(other)
    code, printed, _ = run_cli(capsys, "verify", other)
    assert code == 0  # consistent in itself
    assert run_cli(capsys, "verify", other, "--expect", root_hash)[0] == 1
    with pytest.raises(SystemExit):  # not a root hash: argparse's one-line usage error
        main(["verify", str(root), "--expect", "xyz"])


def test_unpinned_byte_flip_is_seen_without_deep(world, capsys):
    root, _, _ = world
    row = _first_row(root)
    hostile.replace_bytes(root / SHARD0, row["offset"] + 5, b"\x00\x01")
    code, printed, _ = run_cli(capsys, "verify", root)
    assert code == 1 and "manifest sha256" in printed and "root hash" in printed
