"""verify: every kind of damage to tars, index and manifest becomes a specific Problem, never a crash."""

from __future__ import annotations

import json
import random
import tarfile

import pytest

from shards import DatasetError
from shards.tools.verify import Problem, VerifyReport, verify_dataset
from tests.factories import make_dataset

from . import hostile
from .hostile import index_rows, repin

SHARD0 = "shards/shard-000000.tar"
SHARD1 = "shards/shard-000001.tar"
SHARD2 = "shards/shard-000002.tar"


@pytest.fixture
def root(tmp_path):
    """Eight samples, JPEG and PNG, in three shards (5, 2 and 1 samples)."""
    path = tmp_path / "ds"
    manifest = make_dataset(path, n=8, max_shard_bytes=30_000)
    assert manifest["num_shards"] == 3
    return path


def write_index(root, rows: list[dict]) -> None:
    hostile.write_index(root, rows)  # re-pinned: these tests are about the index, not the hashes


def edit_manifest(root, edit) -> None:
    doc = hostile.read_manifest(root)
    edit(doc)
    hostile.write_manifest(root, doc)


def append_members(tar_path, members: list[tuple[str, bytes]]) -> None:
    hostile.append_members(tar_path, members)
    repin(tar_path.parent.parent)


def write_shard(path, data: bytes) -> None:
    path.write_bytes(data)
    repin(path.parent.parent)


def with_message(report: VerifyReport, text: str) -> list[Problem]:
    return [p for p in report.problems if text in p.message]


def test_clean_dataset_has_no_problems(root):
    for deep in (False, True):
        advanced = []
        report = verify_dataset(str(root), deep=deep, progress=advanced.append)
        assert report.problems == []
        assert report.ok and report.deep is deep
        assert (report.shards_checked, report.samples_checked) == (3, 8)
        assert sum(advanced) == 8
        doc = report.to_dict()
        assert doc["ok"] is True and doc["problems"] == [] and doc["samples_checked"] == 8
        json.dumps(doc)


def test_problem_prints_as_one_line():
    assert str(Problem(SHARD1, "file-abc", "sha256 mismatch")) == f"{SHARD1} key file-abc: sha256 mismatch"
    assert str(Problem(SHARD1, None, "truncated")) == f"{SHARD1}: truncated"
    assert str(Problem(None, None, "manifest num_samples 3")) == "manifest num_samples 3"


@pytest.mark.parametrize(
    "make_bad",
    [
        lambda root: None,  # no such folder
        lambda root: root.mkdir(),  # not a dataset: no manifest
        lambda root: (make_dataset(root, n=1), edit_manifest(root, lambda d: d.update(version=99))),
        lambda root: (make_dataset(root, n=1), (root / "index.parquet").write_bytes(b"not parquet")),
    ],
    ids=["missing", "not-a-dataset", "newer-version", "corrupt-index"],
)
def test_unopenable_dataset_raises_dataset_error(tmp_path, make_bad):
    root = tmp_path / "ds"
    make_bad(root)
    with pytest.raises(DatasetError):
        verify_dataset(str(root))


def test_truncated_tar_is_reported_and_the_next_shards_checked(root):
    rows = [r for r in index_rows(root) if r["shard"] == SHARD0]
    cut = rows[1]["offset"] + rows[1]["nbytes"] // 2  # in the middle of the second image
    path = root / SHARD0
    write_shard(path, path.read_bytes()[:cut])
    report = verify_dataset(str(root))
    [unreadable] = with_message(report, "unreadable tar")
    assert unreadable.shard == SHARD0 and "unexpected end of data" in unreadable.message
    [missing] = with_message(report, "missing from shards")
    assert missing.shard == SHARD0 and "4 index rows" in missing.message and rows[1]["key"] in missing.message
    assert with_message(report, f"the file has {cut}")
    # The first sample was read whole and is fine; the other two shards are checked in full.
    assert report.shards_checked == 3 and report.samples_checked == 1 + 3
    assert {p.shard for p in report.problems} == {SHARD0}


def test_a_group_cut_short_by_truncation_is_no_stray(root):
    row = [r for r in index_rows(root) if r["shard"] == SHARD0][1]
    cut = row["offset"] + row["nbytes"] + 600  # past the image, inside its json member's header
    path = root / SHARD0
    write_shard(path, path.read_bytes()[:cut])
    report = verify_dataset(str(root))
    [truncated] = with_message(report, "without an end-of-archive")
    assert truncated.shard == SHARD0 and f"ends at byte {cut}" in truncated.message
    assert not with_message(report, "stray")
    [missing] = with_message(report, "missing from shards")
    assert row["key"] in missing.message and report.samples_checked == 1 + 3


def test_zero_length_shard(root):
    write_shard(root / SHARD1, b"")
    report = verify_dataset(str(root), deep=True)
    [unreadable] = with_message(report, "unreadable tar")
    assert unreadable.shard == SHARD1 and "empty file" in unreadable.message
    assert report.samples_checked == 8 - 2


def test_flipped_image_byte_only_deep_verify_sees(root):
    row = next(r for r in index_rows(root) if r["ext"] == "jpg" and r["shard"] == SHARD1)
    path = root / row["shard"]
    data = bytearray(path.read_bytes())
    data[row["offset"] + row["nbytes"] // 2] ^= 0xFF
    write_shard(path, bytes(data))
    assert verify_dataset(str(root)).problems == []
    report = verify_dataset(str(root), deep=True)
    [mismatch] = with_message(report, "sha256 mismatch")
    assert (mismatch.shard, mismatch.key) == (SHARD1, row["key"])
    assert f"json says {row['sha256']}" in mismatch.message


def test_undecodable_image_is_a_problem_in_deep_mode(root):
    row = index_rows(root)[0]
    path = root / row["shard"]
    data = bytearray(path.read_bytes())
    data[row["offset"] : row["offset"] + row["nbytes"]] = bytes(row["nbytes"])
    write_shard(path, bytes(data))
    report = verify_dataset(str(root), deep=True)
    assert {p.key for p in report.problems} == {row["key"]}
    assert with_message(report, "sha256 mismatch")
    [failed] = with_message(report, "image does not decode")
    assert "not-an-image" in failed.message


def test_stray_members_appended_to_a_tar(root):
    append_members(root / SHARD1, [("stray.txt", b"hello"), ("file-x.jpg", b"\xff\xd8 not really")])
    report = verify_dataset(str(root))
    assert [str(p) for p in with_message(report, "stray member")] == [
        f"{SHARD1} key stray: stray member stray.txt: no stray.json",
        f"{SHARD1} key file-x: stray member file-x.jpg: no file-x.json",
    ]
    # tarfile pads the archive to whole records, so the file no longer has the manifest's size.
    [size] = with_message(report, "bytes, the file has")
    assert size.shard == SHARD1
    assert report.samples_checked == 8  # strays are not samples


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ([("file-y.json", b"{}")], "file-y.json has no image member"),
        (
            [("file-z.jpg", b"1"), ("file-z.png", b"2"), ("file-z.json", b"{}")],
            "extra members: file-z.jpg, file-z.png, file-z.json (expected one KEY.EXT and one KEY.json)",
        ),
        ([("noext", b"1")], "member 'noext' has no extension"),
        ([("Upper.jpg", b"1")], "invalid sample key 'Upper'"),
    ],
    ids=["json-without-image", "extra-member", "no-extension", "bad-key"],
)
def test_malformed_groups(root, members, expected):
    append_members(root / SHARD1, members)
    report = verify_dataset(str(root))
    assert [p for p in report.problems if p.shard == SHARD1 and expected in p.message]


def test_key_twice_in_the_dataset(root):
    row = next(r for r in index_rows(root) if r["shard"] == SHARD0)
    with tarfile.open(root / SHARD0) as tar:
        ours = [m for m in tar.getmembers() if m.name.startswith(row["key"])]
        members = [(m.name, tar.extractfile(m).read()) for m in ours]
    append_members(root / SHARD1, members)
    report = verify_dataset(str(root))
    [twice] = with_message(report, "key appears twice")
    assert (twice.shard, twice.key) == (SHARD1, row["key"]) and f"(first in {SHARD0})" in twice.message
    assert not with_message(report, "missing index row") and not with_message(report, "missing from shards")


def test_dotted_key(root):
    doc = {**index_rows(root)[0], "key": "bad.key"}
    append_members(root / SHARD1, [("bad.key.jpg", b"\xff\xd8"), ("bad.key.json", json.dumps(doc).encode())])
    report = verify_dataset(str(root))
    dotted = with_message(report, "has a dot in its key")
    assert [p.shard for p in dotted] == [SHARD1, SHARD1]
    expected = "'bad.key.jpg' has a dot in its key: readers would split it into 'bad' and 'key.jpg'"
    assert expected in dotted[0].message


def test_missing_index_row(root):
    rows = index_rows(root)
    dropped = rows.pop(3)
    write_index(root, rows)
    report = verify_dataset(str(root))
    assert report.problems == [Problem(dropped["shard"], dropped["key"], "missing index row")]


def test_index_row_twice(root):
    rows = index_rows(root)
    write_index(root, [*rows, rows[6]])
    report = verify_dataset(str(root))
    assert report.problems == [
        Problem(None, rows[6]["key"], f"index has more than one row for this key ({SHARD1}, {SHARD1})")
    ]


def test_index_row_with_no_sample(root):
    rows = index_rows(root)
    rows.append({**rows[0], "key": "file-ghost", "offset": 99_999})
    write_index(root, rows)
    report = verify_dataset(str(root))
    assert report.problems == [Problem(SHARD0, "file-ghost", "missing from shards")]


def test_corrupted_header_in_the_middle_of_a_shard(root):
    row = [r for r in index_rows(root) if r["shard"] == SHARD0][2]
    header_at = row["offset"] - 512
    path = root / SHARD0
    data = bytearray(path.read_bytes())
    data[header_at : header_at + 512] = random.Random(0).randbytes(512)
    write_shard(path, bytes(data))
    report = verify_dataset(str(root))
    [corrupt] = with_message(report, "corrupt tar header")
    assert corrupt.shard == SHARD0 and f"at byte {header_at}" in corrupt.message
    [missing] = with_message(report, "missing from shards")
    assert "3 index rows" in missing.message and row["key"] in missing.message
    assert report.samples_checked == 2 + 3


def test_corrupted_first_header(root):
    path = root / SHARD1
    data = bytearray(path.read_bytes())
    data[:512] = random.Random(1).randbytes(512)
    write_shard(path, bytes(data))
    report = verify_dataset(str(root))
    [unreadable] = with_message(report, "unreadable tar after byte 0")
    assert unreadable.shard == SHARD1


def test_missing_end_of_archive(root):
    path = root / SHARD1
    write_shard(path, path.read_bytes()[:-1024])
    report = verify_dataset(str(root))
    [end] = with_message(report, "without an end-of-archive")
    assert end.shard == SHARD1 and report.samples_checked == 8


def test_wrong_offset_in_the_index(root):
    rows = index_rows(root)
    rows[2]["offset"] += 512
    write_index(root, rows)
    report = verify_dataset(str(root))
    assert report.problems == [
        Problem(
            rows[2]["shard"], rows[2]["key"],
            f"index offset {rows[2]['offset']}, the image data starts at byte {rows[2]['offset'] - 512}",
        )
    ]


def test_index_fields_must_equal_the_json(root):
    rows = index_rows(root)
    rows[5]["width"] += 1
    rows[5]["license"] = "cc-by"
    write_index(root, rows)
    [problem] = verify_dataset(str(root)).problems
    assert problem.key == rows[5]["key"]
    assert problem.message == (
        f"index and json disagree on width (index {rows[5]['width']}, json {rows[5]['width'] - 1}), "
        "license (index 'cc-by', json None)"
    )


def test_json_that_breaks_the_format(root):
    append_members(root / SHARD1, [("file-q.jpg", b"1"), ("file-q.json", b"{not json")])
    report = verify_dataset(str(root))
    [invalid] = with_message(report, "invalid file-q.json")
    assert invalid.key == "file-q" and "not valid JSON" in invalid.message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d.update(num_samples=9), "manifest num_samples 9, but the shards hold 8"),
        (lambda d: d.update(num_shards=4), "manifest num_shards 4, but it lists 3 shards"),
        (lambda d: d.update(total_bytes=1), "manifest total_bytes 1, but the shards hold"),
        (
            lambda d: d["shards"][1].update(num_samples=3),
            f"{SHARD1}: manifest says 3 samples, the shard holds 2",
        ),
        (lambda d: d["shards"][1].update(nbytes=7), f"{SHARD1}: manifest says 7 bytes, the file has"),
        (
            lambda d: d["shards"].append({"name": "shards/shard-000003.tar", "num_samples": 0, "nbytes": 0}),
            "shards/shard-000003.tar: listed in the manifest but missing",
        ),
        (lambda d: d["shards"].pop(), f"{SHARD2}: shard file not listed in the manifest"),
    ],
    ids=[
        "num_samples", "num_shards", "total_bytes", "shard-samples", "shard-bytes",
        "missing-file", "unlisted",
    ],
)
def test_manifest_must_match_the_shards(root, edit, expected):
    edit_manifest(root, edit)
    report = verify_dataset(str(root))
    assert any(expected in str(p) for p in report.problems), [str(p) for p in report.problems]


def test_unlisted_shard_rows_are_reported(root):
    edit_manifest(root, lambda d: d["shards"].pop())
    report = verify_dataset(str(root))
    [rows] = with_message(report, "index rows name a shard not in the manifest")
    assert rows.shard == SHARD2


def test_verify_over_http(root, http_server):
    url, _ = http_server(root.parent)
    report = verify_dataset(f"{url}/ds", deep=True)
    assert report.problems == [] and (report.shards_checked, report.samples_checked) == (3, 8)
    path = root / SHARD1
    path.write_bytes(path.read_bytes()[:1000])
    report = verify_dataset(f"{url}/ds")
    assert [p.shard for p in with_message(report, "unreadable tar")] == [SHARD1]
    # Cut exactly after the last member: the end-of-archive check must not read past the end.
    last = root / SHARD2
    last.write_bytes(last.read_bytes()[:-1024])
    report = verify_dataset(f"{url}/ds")
    assert [p.shard for p in with_message(report, "without an end-of-archive")] == [SHARD2]
