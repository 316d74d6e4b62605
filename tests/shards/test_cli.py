"""`anyres-shards` as a user meets it: commands, outputs, and every kind of bad input."""

import io
import json
import subprocess
import sys
import tarfile

import pyarrow.parquet as pq
import pytest
from PIL import Image

from plumbing.console import parse_size
from shards.intake.pack import file_key
from shards.tools.cli import main
from tests.factories import encode, gradient

COMMANDS_ON_A_DATASET = [
    ["info", "{ds}"], ["info", "{ds}", "--json"], ["ls", "{ds}"], ["show", "{ds}", "file-0"],
    ["verify", "{ds}"], ["plot", "{ds}", "-o", "{tmp}/p.png"], ["grid", "{ds}", "-o", "{tmp}/g.png"],
    ["subset", "{ds}", "{tmp}/sub"],
]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    (folder / "nested").mkdir()
    sizes = [(640, 480), (480, 640), (1200, 800), (300, 300), (2048, 1100)]
    for i, (w, h) in enumerate(sizes):
        (folder / f"img{i}.jpg").write_bytes(encode(gradient(w, h, seed=i)))
    (folder / "nested" / "rotated.jpg").write_bytes(encode(gradient(500, 300, seed=9), orientation=6))
    (folder / "nested" / "flat.png").write_bytes(encode(gradient(400, 260, seed=10), "PNG"))
    (folder / "copy.jpg").write_bytes((folder / "img0.jpg").read_bytes())  # exact duplicate, walked first
    (folder / "tiny.jpg").write_bytes(encode(gradient(40, 30)))
    (folder / "broken.jpg").write_bytes(encode(gradient(300, 200))[:900])
    (folder / "page.jpg").write_bytes(b"<html>not found</html>")
    (folder / "notes.txt").write_text("not an image, not looked at")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "credits.csv").write_text("path,license,owner\nimg1.jpg,cc-by-4.0,Ada\n")
    return folder


@pytest.fixture(scope="module")
def dataset(photo_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("packed") / "ds"
    code = main(["pack", str(photo_folder), str(out), "--min-side", "64", "--shard-size", "400KB",
                 "--attribution", str(photo_folder / "credits.csv")])
    assert code == 0
    return out


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_pack_keeps_good_images_and_records_every_reject(dataset, photo_folder):
    manifest = json.loads((dataset / "dataset.json").read_text())
    assert manifest["num_samples"] == 7 and manifest["num_shards"] >= 2
    assert manifest["curation"]["rejects"] == {"duplicate": 1, "too-small": 1, "corrupt": 1, "not-an-image": 1,
                                               "symlink-loop": 1}
    rejects = pq.read_table(dataset / "work" / "rejects.parquet").to_pylist()
    assert {r["source_id"]: r["reason"] for r in rejects} == {
        "img0.jpg": "duplicate", "tiny.jpg": "too-small", "broken.jpg": "corrupt", "page.jpg": "not-an-image",
        "loop": "symlink-loop",  # the folder policy of shards.intake.admission: links followed, loops rejected
    }
    index = {row["source_id"]: row for row in pq.read_table(dataset / "index.parquet").to_pylist()}
    assert (index["nested/rotated.jpg"]["width"], index["nested/rotated.jpg"]["height"]) == (300, 500)
    assert index["nested/rotated.jpg"]["orientation"] == 6
    assert (index["img1.jpg"]["license"], index["img1.jpg"]["owner"]) == ("cc-by-4.0", "Ada")
    assert index["img1.jpg"]["key"] == file_key("img1.jpg")
    stored = {row["key"]: row for row in index.values()}
    assert (photo_folder / "img3.jpg").read_bytes() == _member(dataset, stored[file_key("img3.jpg")])


def _member(dataset, row):
    with open(dataset / row["shard"], "rb") as f:
        f.seek(row["offset"])
        return f.read(row["nbytes"])


def test_info_json_and_table(dataset, capsys):
    code, out, _ = run(capsys, "info", dataset, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["stats"]["num_samples"] == 7
    assert doc["stats"]["min_side_buckets"] == {"<256": 0, "256-511": 5, "512-1023": 1, "1024-2047": 1,
                                                "2048-4095": 0, ">=4096": 0}
    assert doc["curation"]["counts"] == {"seen": 12, "kept": 7, "rejected": 5}
    code, out, _ = run(capsys, "info", dataset)
    assert code == 0 and "samples by min side" in out and "not-an-image" in out and "cc-by-4.0" in out


def test_ls_filters(dataset, capsys):
    code, out, _ = run(capsys, "ls", dataset, "--min-side", "600")
    sizes = sorted(line.split("\t")[1] for line in out.splitlines())
    assert code == 0 and sizes == ["1200x800", "2048x1100"]
    _, out, _ = run(capsys, "ls", dataset, "--license", "cc-by-4.0")
    assert [line.split("\t")[0] for line in out.splitlines()] == [file_key("img1.jpg")]
    _, out, _ = run(capsys, "ls", dataset, "--limit", "3")
    assert len(out.splitlines()) == 3


def test_show_writes_stored_bytes_or_the_oriented_image(dataset, photo_folder, tmp_path, capsys):
    key = file_key("nested/rotated.jpg")
    code, out, _ = run(capsys, "show", dataset, key, "-o", tmp_path)
    assert code == 0 and json.loads(out)["orientation"] == 6
    assert (tmp_path / f"{key}.jpg").read_bytes() == (photo_folder / "nested" / "rotated.jpg").read_bytes()
    code, _, _ = run(capsys, "show", dataset, key, "-o", tmp_path / "upright.png", "--orient")
    assert code == 0 and Image.open(tmp_path / "upright.png").size == (300, 500)


def test_show_refuses_member_names_that_leave_the_output_folder(tmp_path, capsys):
    # A hostile dataset: its index and tar name a sample `../../evil`.
    from shards.format.writer import DatasetWriter

    root = tmp_path / "hostile"
    DatasetWriter(root).finalize()
    data = encode(gradient(64, 64))
    doc = {"key": "../../evil", "ext": "jpg", "width": 64, "height": 64}
    with tarfile.open(root / "shards" / "shard-000000.tar", "w") as tar:
        for name, payload in (("../../evil.jpg", data), ("../../evil.json", json.dumps(doc).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    out = tmp_path / "out" / "inner"
    out.mkdir(parents=True)
    code, _, err = run(capsys, "show", root, "../../evil", "-o", out)
    assert code == 2 and "invalid sample key" in err
    assert not list(tmp_path.rglob("evil*"))


def test_subset_copies_bytes_untouched_with_a_fresh_index(dataset, tmp_path, capsys):
    code, out, _ = run(capsys, "subset", dataset, tmp_path / "big", "--min-side", "480", "--shard-size", "1MB")
    assert code == 0 and "wrote 4 samples" in out
    big = json.loads((tmp_path / "big" / "dataset.json").read_text())
    assert big["derived_from"]["filter"] == {"min_side": 480} and big["num_shards"] == 1
    parent = {r["key"]: r for r in pq.read_table(dataset / "index.parquet").to_pylist()}
    for row in pq.read_table(tmp_path / "big" / "index.parquet").to_pylist():
        assert _member(tmp_path / "big", row) == _member(dataset, parent[row["key"]])
        assert {k: v for k, v in row.items() if k not in ("shard", "offset")} == {
            k: v for k, v in parent[row["key"]].items() if k not in ("shard", "offset")
        }
    assert run(capsys, "verify", tmp_path / "big", "--deep")[0] == 0
    code, _, err = run(capsys, "subset", dataset, tmp_path / "none", "--min-side", "100000")
    assert code == 2 and err == f"anyres-shards: error: the filter {{'min_side': 100000}} selects no samples of {dataset}\n"


@pytest.fixture
def broken_datasets(dataset, tmp_path):
    import shutil

    cases = {}
    cases["missing"] = tmp_path / "does-not-exist"
    cases["not-a-dataset"] = tmp_path / "plain"
    cases["not-a-dataset"].mkdir()
    newer = tmp_path / "newer"
    shutil.copytree(dataset, newer)
    manifest = json.loads((newer / "dataset.json").read_text())
    (newer / "dataset.json").write_text(json.dumps({**manifest, "version": 99}))
    cases["newer"] = newer
    corrupt = tmp_path / "corrupt-index"
    shutil.copytree(dataset, corrupt)
    (corrupt / "index.parquet").write_bytes(b"PAR1 this is not parquet")
    cases["corrupt-index"] = corrupt
    garbled = tmp_path / "garbled-manifest"
    shutil.copytree(dataset, garbled)
    (garbled / "dataset.json").write_text("{ nope")
    cases["garbled-manifest"] = garbled
    return cases


EXPECTED_MESSAGES = {
    "missing": "no such dataset", "not-a-dataset": "not an anyres dataset", "newer": "newer than this anyres",
    "corrupt-index": "corrupt index", "garbled-manifest": "corrupt manifest",
}


@pytest.mark.parametrize("case", sorted(EXPECTED_MESSAGES))
@pytest.mark.parametrize("command", COMMANDS_ON_A_DATASET, ids=lambda c: " ".join(c[:1] + c[2:3]))
def test_bad_datasets_give_one_line_and_exit_2(broken_datasets, tmp_path, capsys, case, command):
    args = [a.format(ds=broken_datasets[case], tmp=tmp_path) for a in command]
    code, _, err = run(capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("anyres-shards: error: ") and EXPECTED_MESSAGES[case] in err


def test_the_installed_command_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "shards.tools.cli", "info", str(tmp_path / "nope")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"anyres-shards: error: no such dataset: {tmp_path / 'nope'}"


def test_pack_bad_calls(tmp_path, capsys):
    code, _, err = run(capsys, "pack", tmp_path / "nope", tmp_path / "out")
    assert code == 2 and "not a folder" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "pack", tmp_path / "empty", tmp_path / "out")
    assert code == 2 and "no image files" in err
    (tmp_path / "empty" / "x.jpg").write_bytes(b"junk")
    code, _, err = run(capsys, "pack", tmp_path / "empty", tmp_path / "out")
    assert code == 2 and "no file under" in err and "not-an-image" in err
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_pack_refuses_to_overwrite_a_dataset(dataset, photo_folder, capsys):
    before = (dataset / "dataset.json").read_bytes()
    code, _, err = run(capsys, "pack", photo_folder, dataset)
    assert code == 2 and "already holds a dataset" in err
    assert (dataset / "dataset.json").read_bytes() == before


@pytest.mark.parametrize("text, value", [("1GB", 10**9), ("500MB", 5 * 10**8), ("64MiB", 64 * 2**20), ("4096", 4096)])
def test_parse_size(text, value):
    assert parse_size(text) == value


def test_bad_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["ls", "x", "--min-side", "big"])
    assert caught.value.code == 2


def test_commands_work_on_a_dataset_served_over_http(dataset, http_server, tmp_path, capsys):
    base, ranges = http_server(dataset)
    code, out, _ = run(capsys, "info", base, "--json")
    assert code == 0 and json.loads(out)["stats"]["num_samples"] == 7
    code, out, _ = run(capsys, "ls", base, "--min-side", "600")
    assert code == 0 and len(out.splitlines()) == 2
    key = file_key("img3.jpg")
    code, out, _ = run(capsys, "show", base, key, "-o", tmp_path)
    assert code == 0 and json.loads(out)["key"] == key
    assert (tmp_path / f"{key}.jpg").read_bytes() == _member(dataset, json.loads(out))
    code, out, _ = run(capsys, "verify", base, "--deep")
    assert code == 0 and "OK: 7 samples" in out
    code, _, err = run(capsys, "info", f"{base}/nothing-here")
    assert code == 2 and "no such dataset" in err


@pytest.mark.parametrize("args", [["--n", "0"], ["--thumb", "8"], ["--n", "x"]])
def test_grid_bad_numbers_exit_2(dataset, tmp_path, capsys, args):
    with pytest.raises(SystemExit) as caught:
        main(["grid", str(dataset), "-o", str(tmp_path / "g.png"), *args])
    assert caught.value.code == 2 and not (tmp_path / "g.png").exists()
