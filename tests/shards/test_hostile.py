"""Datasets made by someone else: every inspection command and the loader's shard stream refuse
or report each hostile case (SECURITY.md), without a traceback, without touching a file outside
the dataset or output folder, and without printing a control character taken from the dataset.

Each case takes an honest dataset and edits it the way an attacker would, re-pinning the
manifest so that the hashes agree with the forgery (tests/shards/hostile.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

from shards import Dataset
from shards.format.tario import BLOCK
from shards.tools.cli import main

from .hostile import (
    SHARD0,
    index_rows,
    make_world,
    member,
    pax_member,
    read_manifest,
    rebuild,
    repin,
    shard_blobs,
    with_checksum,
    write_index,
    write_manifest,
)

TIME_BOUND_S = 10  # each command on each hostile case (they take well under a second here)
# Paths opened while a command runs (Python's audit events cover open() and os.open()).
OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    global OPENED
    OPENED = []
    start = time.perf_counter()
    try:
        code = main([str(a) for a in args])
    finally:
        opened, OPENED = OPENED, None
    assert time.perf_counter() - start < TIME_BOUND_S, args
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "\x1b" not in out + err and "\x07" not in out + err  # nothing from the dataset reaches the terminal raw
    run_cli.opened = opened
    return code, out, err


def stream(root: Path) -> tuple[int, list[Exception], list[Exception]]:
    """What the training loader gets: samples, shard errors and skipped samples, counted."""
    errors, skips = [], []
    samples = list(Dataset(str(root)).iter_samples(on_error=errors.append, on_skip=skips.append))
    return len(samples), errors, skips


# --- shard cases: the tar breaks the contract --------------------------------------------------


def _first_row(root):
    return sorted(index_rows(root), key=lambda r: r["offset"])[0]


def pax_before_json(root):
    blobs = shard_blobs(root)
    key = _first_row(root)["key"]
    blobs.insert(1, pax_member({"size": "3", "path": f"{key}.json"}, name=f"{key}.json"))
    rebuild(root, blobs)


def pax_pathological(root):
    # The CVE-2024-6232 shape: a pax header whose records make tarfile's regex backtrack.
    blobs = shard_blobs(root)
    blobs.insert(0, member("pax", b"1" * 60_000 + b" " + b"0" * 60_000, kind=b"x"))
    rebuild(root, blobs)


def gnu_long_name(root):
    blobs = shard_blobs(root)
    blobs.insert(0, member("././@LongLink", b"evil.jpg\0", kind=b"L"))
    rebuild(root, blobs)


def retyped(kind: bytes, linkname: bytes = b""):
    def edit(root):
        blobs = shard_blobs(root)
        header = bytearray(blobs[0][:BLOCK])
        header[156:157] = kind
        header[157 : 157 + len(linkname)] = linkname
        blobs[0] = with_checksum(bytes(header)) + blobs[0][BLOCK:]
        rebuild(root, blobs)
    return edit


def header_field(start: int, value: bytes, blob: int = 0):
    def edit(root):
        blobs = shard_blobs(root)
        header = bytearray(blobs[blob][:BLOCK])
        header[start : start + len(value)] = value
        blobs[blob] = with_checksum(bytes(header)) + blobs[blob][BLOCK:]
        rebuild(root, blobs)
    return edit


def json_member(text: bytes):
    def edit(root):
        blobs = shard_blobs(root)
        name = blobs[1][:100].split(b"\0", 1)[0].decode()
        blobs[1] = member(name, text)
        rebuild(root, blobs)
    return edit


def meta_json(root, **changes) -> bytes:
    row = _first_row(root)
    doc = {k: v for k, v in row.items() if k not in ("shard", "offset")}
    doc.update(changes)
    return json.dumps(doc).encode()


def json_naming_conftest(root):
    json_member(meta_json(root, key="conftest", ext="py"))(root)


def lone_surrogate(root):
    json_member(meta_json(root).replace(b'"title": null', b'"title": "\\ud800"'))(root)


def swapped_members(root):
    blobs = shard_blobs(root)
    blobs[0], blobs[1] = blobs[1], blobs[0]
    rebuild(root, blobs)


SHARD_CASES = {
    "pax-header-before-json": pax_before_json,
    "pax-pathological-regex": pax_pathological,
    "gnu-long-name": gnu_long_name,
    "sparse-member": retyped(b"S"),
    "symlink-member": retyped(b"2", b"/etc/passwd"),
    "hardlink-member": retyped(b"1", b"shards/shard-000000.tar"),
    "gnu-magic": header_field(257, b"ustar  \0"),
    "base256-size": header_field(124, b"\x80" + (2**40).to_bytes(11, "big")),
    "8-GiB-member": header_field(124, b"77777777777\0"),
    "json-member-100-MiB": header_field(124, b"%011o\0" % (100 * 2**20), blob=1),
    "json-deeply-nested": json_member(b"[" * 50_000 + b"]" * 50_000),
    "json-huge-integer": json_member(b'{"width": ' + b"9" * 5000 + b"}"),
    "json-names-conftest-py": json_naming_conftest,
    "json-lone-surrogate": lone_surrogate,
    "json-before-image": swapped_members,
}


def one_line_error(code: int, err: str) -> bool:
    lines = [line for line in err.splitlines() if line.strip()]  # a progress bar may leave a blank
    return code == 2 and len(lines) == 1 and lines[0].startswith("anyres-shards: error: ")


# Members slipped in before a sample's image header: a seek to the indexed offset never meets
# them, so show/grid/subset may serve that sample, but only the very bytes verify checks.
BEFORE_IMAGE = {"pax-pathological-regex", "gnu-long-name"}


@pytest.mark.parametrize("case", SHARD_CASES)
def test_shard_contract_is_enforced_everywhere(world, capsys, case):
    root, out, outside = world
    SHARD_CASES[case](root)
    row = _first_row(root)
    code, printed, _ = run_cli(capsys, "verify", root)
    assert code == 1 and "OK" not in printed
    for args in (("show", root, row["key"], "-o", out), ("grid", root, "-o", out / "g.png", "--n", "4"),
                 ("subset", root, out / "sub")):
        code, _, err = run_cli(capsys, *args)
        assert one_line_error(code, err) or (case in BEFORE_IMAGE and code == 0), (args[0], err)
        assert not any(str(outside) in p for p in run_cli.opened)
    if case in BEFORE_IMAGE:
        written = out / f"{row['key']}.{row['ext']}"
        assert hashlib.sha256(written.read_bytes()).hexdigest() == row["sha256"]
        return
    # Nothing written: no image, no conftest.py, and the subset never became a dataset.
    assert [p.name for p in out.iterdir() if p.name != "sub"] == [] and not (out / "sub/dataset.json").exists()
    n, errors, skips = stream(root)
    assert errors or skips  # the loader counts it, and goes on
    assert n + len(skips) <= 4


def test_data_after_the_end_of_archive_is_reported(world, capsys):
    root, _, _ = world
    rebuild(root, shard_blobs(root), end=b"\0" * 1024 + b"hidden")
    code, printed, _ = run_cli(capsys, "verify", root)
    assert code == 1 and "data after the end-of-archive" in printed


# --- confinement: names that leave the dataset ------------------------------------------------


def manifest_shard_name(name: str):
    def edit(root):
        doc = read_manifest(root)
        doc["shards"][0]["name"] = name
        write_manifest(root, doc)
    return edit


def index_shard_name(name: str):
    def edit(root):
        write_index(root, [{**r, "shard": name} for r in index_rows(root)])
    return edit


def symlinked_shard(root):
    (root / SHARD0).unlink()
    (root / SHARD0).symlink_to(root.parent / "outside" / "s1.tar")


def symlinked_shard_folder(root):
    (root / SHARD0).unlink()
    (root / "shards").rmdir()
    (root / "shards").symlink_to(root.parent / "outside")
    (root.parent / "outside" / "shard-000000.tar").write_bytes((root.parent / "outside" / "s1.tar").read_bytes())


def symlinked_manifest(root):
    (root.parent / "outside" / "dataset.json").write_bytes((root / "dataset.json").read_bytes())
    (root / "dataset.json").unlink()
    (root / "dataset.json").symlink_to(root.parent / "outside" / "dataset.json")


DATASET_CASES = {  # refused by every command (exit 2): the dataset cannot be opened safely
    "manifest-shard-dotdot": manifest_shard_name("../outside/s1.tar"),
    "manifest-shard-inner-dotdot": manifest_shard_name("shards/../../outside/s1.tar"),
    "manifest-shard-absolute": lambda root: manifest_shard_name(str(root.parent / "outside" / "s1.tar"))(root),
    "manifest-shard-protocol-relative": manifest_shard_name("//127.0.0.1:9/shards/shard-000000.tar"),
    "manifest-shard-file-url": manifest_shard_name("file:///etc/passwd"),
    "manifest-symlinked-out": symlinked_manifest,
}
SHARD_PATH_CASES = {  # the dataset opens; reading the shard is refused (verify 1, others 2)
    "index-shard-dotdot": index_shard_name("../outside/s1.tar"),
    "index-shard-system-file": index_shard_name("../../../../../../etc/passwd"),
    "shard-symlinked-out": symlinked_shard,
    "shard-folder-symlinked-out": symlinked_shard_folder,
}


@pytest.mark.parametrize("case", DATASET_CASES)
def test_names_leaving_the_dataset_are_refused(world, capsys, case):
    root, out, outside = world
    DATASET_CASES[case](root)
    for args in (("info", root), ("ls", root), ("verify", root), ("show", root, "x", "-o", out),
                 ("plot", root, "-o", out / "p.png"), ("grid", root, "-o", out / "g.png"),
                 ("subset", root, out / "sub")):
        code, _, err = run_cli(capsys, *args)
        assert one_line_error(code, err), (args[0], err)
        assert not any(str(outside) in p or p == "/etc/passwd" for p in run_cli.opened), args[0]
    with pytest.raises(hostile_errors()):
        stream(root)


def hostile_errors():
    from plumbing.errors import UserError

    return UserError


@pytest.mark.parametrize("case", SHARD_PATH_CASES)
def test_shard_paths_are_confined(world, capsys, case):
    root, out, outside = world
    SHARD_PATH_CASES[case](root)
    key = _first_row(root)["key"]
    code, printed, _ = run_cli(capsys, "verify", root)
    assert code == 1 and "OK" not in printed
    assert not any(str(outside) in p or p == "/etc/passwd" for p in run_cli.opened)
    for args in (("show", root, key, "-o", out), ("grid", root, "-o", out / "g.png"), ("subset", root, out / "sub")):
        code, _, err = run_cli(capsys, *args)
        assert code == 2, (args[0], err)
        assert not any(str(outside) in p or p == "/etc/passwd" for p in run_cli.opened), args[0]
    if case.startswith("shard-"):
        n, errors, _ = stream(root)
        assert n == 0 and len(errors) == 1


# --- the manifest and the index: types, sizes, values -----------------------------------------


def manifest_text(text: bytes):
    return lambda root: (root / "dataset.json").write_bytes(text)


def manifest_edit(**changes):
    def edit(root):
        doc = read_manifest(root)
        doc.update(changes)
        write_manifest(root, doc)
    return edit


def index_values(**changes):
    def edit(root):
        rows = index_rows(root)
        rows[0].update(changes)
        write_index(root, rows)
    return edit


def invalid_utf8_index(root):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(root / "index.parquet")
    bad = pa.array([b"\xff\xfe" + k.encode() for k in table["key"].to_pylist()], pa.binary())
    table = table.set_column(0, "key", bad)
    pq.write_table(table, root / "index.parquet")
    repin(root)


MANIFEST_CASES = {
    "manifest-deeply-nested": manifest_text(b'{"format": "anyres-shards", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "manifest-huge-integer": manifest_text(b'{"format": "anyres-shards", "version": 1, "num_samples": '
                                           + b"7" * 10_000 + b"}"),
    "manifest-not-utf8": manifest_text(b'{"format": "anyres-shards\xff"}'),
    "manifest-nan": manifest_text(b'{"format": "anyres-shards", "version": NaN}'),
    "manifest-shards-a-string": manifest_edit(shards="shards/shard-000000.tar"),
    "manifest-count-a-string": manifest_edit(num_samples="4"),
    "manifest-count-a-bool": manifest_edit(version=True),
    "manifest-count-negative": manifest_edit(total_bytes=-1),
    "manifest-count-2**70": manifest_edit(total_bytes=2**70),
    "manifest-sha-not-hex": manifest_edit(root_hash="z" * 64),
    "index-invalid-utf8": invalid_utf8_index,
    "index-not-parquet": lambda root: (root / "index.parquet").write_bytes(b"PAR1" + b"\0" * 100 + b"PAR1"),
}


@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_malformed_manifest_and_index_are_one_line_errors(world, capsys, case):
    root, out, _ = world
    MANIFEST_CASES[case](root)
    for args in (("info", root), ("ls", root), ("verify", root), ("plot", root, "-o", out / "p.png"),
                 ("grid", root, "-o", out / "g.png"), ("subset", root, out / "sub")):
        code, _, err = run_cli(capsys, *args)
        assert one_line_error(code, err), (args[0], err)


ROW_CASES = {
    "offset-2**62": index_values(offset=2**62),
    "offset-negative": index_values(offset=-512),
    "offset-unaligned": index_values(offset=777),
    "nbytes-2**62": index_values(nbytes=2**62),
    "nbytes-negative": index_values(nbytes=-5),
    "ext-of-another-member": index_values(ext="json"),
}


@pytest.mark.parametrize("case", ROW_CASES)
def test_extreme_index_values(world, capsys, case):
    root, out, _ = world
    ROW_CASES[case](root)
    key = index_rows(root)[0]["key"]
    code, _, _ = run_cli(capsys, "verify", root)
    assert code == 1
    for args in (("show", root, key, "-o", out), ("grid", root, "-o", out / "g.png"), ("subset", root, out / "sub")):
        code, _, err = run_cli(capsys, *args)
        assert one_line_error(code, err), (args[0], err)
    for args in (("info", root), ("ls", root), ("plot", root, "-o", out / "p.png")):
        assert run_cli(capsys, *args)[0] == 0  # they read the index alone, and show it escaped


def test_bounds_are_overridable_and_enforced(world, capsys, monkeypatch):
    root, _, _ = world
    monkeypatch.setenv("ANYRES_MAX_MANIFEST_BYTES", "100")
    code, _, err = run_cli(capsys, "info", root)
    assert code == 2 and "larger than the bound of 100 bytes" in err
    monkeypatch.delenv("ANYRES_MAX_MANIFEST_BYTES")
    monkeypatch.setenv("ANYRES_MAX_JSON_BYTES", "64")
    code, printed, _ = run_cli(capsys, "verify", root)
    assert code == 1 and "over the bound of 64" in printed
    monkeypatch.setenv("ANYRES_MAX_JSON_BYTES", "nope")
    code, _, err = run_cli(capsys, "info", root)
    assert code == 2 and "ANYRES_MAX_JSON_BYTES" in err
