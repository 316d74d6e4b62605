"""Issue 15 through whole runs (inline engine, real photos when present): the keeper rule picks
the best of equal-sized copies in every arrival order, crops and overlays collapse onto their
original while crops that only overlap stay apart, `--add` and `--exclude` follow the same
rules, and a dataset made before signatures were stored still reads and takes an addition."""

import dataclasses
import itertools
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from curation.dedup import stages
from curation.engine import InlineEngine
from curation.entry import add, curate
from curation.signature_files import DATASET_SIGNATURES
from curation.sources.folder import FolderSource
from shards import Dataset
from shards.tools.verify import verify_dataset
from tests.factories import encode

from .corpus import photo
from .helpers import fast_config, rejects_of

W, H = 960, 640


def config(mode: str = "crops", exclude: tuple[str, ...] = ()):
    return dataclasses.replace(fast_config(slice_size=3, min_side=64), dedup=stages(mode, exclude=exclude))


def crop(image: Image.Image, fraction: float, sides: str = "lrtb") -> Image.Image:
    dx, dy = round(image.width * fraction), round(image.height * fraction)
    return image.crop(("l" in sides and dx, "t" in sides and dy, image.width - ("r" in sides and dx),
                       image.height - ("b" in sides and dy)))


def overlay(image: Image.Image) -> Image.Image:
    """A watermark: a 40% x 8% semi-opaque box with text in the lower right corner."""
    out = image.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    box = (int(W * 0.57), int(H * 0.89), int(W * 0.97), int(H * 0.97))
    draw = ImageDraw.Draw(layer)
    draw.rectangle(box, fill=(255, 255, 255, 150))
    draw.text((box[0] + 8, box[1] + 6), "(c) example.com", fill=(0, 0, 0, 230), font_size=30)
    return Image.alpha_composite(out, layer).convert("RGB")


def write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def run(folder: Path, out: Path, mode: str = "crops", exclude: tuple[str, ...] = ()) -> Dataset:
    curate(FolderSource(str(folder)), out, config(mode, exclude), InlineEngine())
    return Dataset(str(out))


def kept_bytes(dataset: Dataset) -> set[bytes]:
    return {sample.data for sample in dataset.iter_samples()}


def test_a_q70_reencode_never_wins_over_the_original_in_any_arrival_order(tmp_path):
    base = photo(1, W, H)
    versions = {"original": encode(base, "JPEG", quality=95), "q70": encode(base, "JPEG", quality=70),
                "q85": encode(base, "JPEG", quality=85)}
    for n, order in enumerate(itertools.permutations(versions)):
        # the folder source reads files in name order: the prefix sets the arrival order
        folder = write(tmp_path / f"in{n}", {f"{k}-{name}.jpg": versions[name] for k, name in enumerate(order)})
        dataset = run(folder, tmp_path / f"ds{n}", mode="pixels")
        assert kept_bytes(dataset) == {versions["original"]}, order
        records = pq.read_table(tmp_path / f"ds{n}" / "work" / "dedup.parquet").to_pylist()
        assert {r["reason"] for r in records} == {"near-duplicate"}
        assert all(r["kept_because"].startswith("higher quality (95 against") for r in records), records


def test_crops_and_an_overlay_collapse_onto_the_original(tmp_path):
    base = photo(2, W, H)
    files = {"a-original.jpg": encode(base, "JPEG", quality=92),
             "b-crop-3.5.jpg": encode(crop(base, 0.035), "JPEG", quality=90),
             "c-crop-5.jpg": encode(crop(base, 0.05), "JPEG", quality=90),
             "d-crop-5-left-top.jpg": encode(crop(base, 0.05, "lt"), "JPEG", quality=90),
             "e-overlay.jpg": encode(overlay(base), "JPEG", quality=90),
             "f-other-photo.jpg": encode(photo(3, W, H), "JPEG", quality=90)}
    folder = write(tmp_path / "in", files)
    dataset = run(folder, tmp_path / "ds")
    assert kept_bytes(dataset) == {files["a-original.jpg"], files["f-other-photo.jpg"]}
    rejects = {Path(r["source_id"]).stem: r for r in rejects_of(tmp_path / "ds")}
    assert set(rejects) == {"b-crop-3.5", "c-crop-5", "d-crop-5-left-top", "e-overlay"}
    assert {r["reason"] for r in rejects.values()} == {"near-duplicate"}
    assert "most pixels" in rejects["c-crop-5"]["detail"]
    original = next(r for r in dataset.index.to_pylist() if r["source_id"] == "a-original.jpg")
    assert original["dup_count"] == 4


def test_two_crops_overlapping_by_half_or_shifted_by_a_fifth_stay_apart(tmp_path):
    big = photo(4, 2 * W, 2 * H)
    half = {"a-left.jpg": big.crop((0, 0, W, H)), "b-right.jpg": big.crop((W // 2, 0, W // 2 + W, H)),
            # a burst: the same scene a moment apart, the frame moved by a fifth
            "c-scene.jpg": big.crop((0, 0, int(1.6 * W), int(1.6 * H))),
            "d-scene-moved.jpg": big.crop((int(0.4 * W), 0, int(0.4 * W) + int(1.6 * W), int(1.6 * H)))}
    folder = write(tmp_path / "in", {name: encode(im, "JPEG", quality=90) for name, im in half.items()})
    dataset = run(folder, tmp_path / "ds")
    assert len(dataset) == 4
    assert rejects_of(tmp_path / "ds") == []


def test_a_small_crop_inside_two_overlapping_crops_does_not_chain_them():
    """Rows 0 and 1 are two views that only overlap; row 2, a crop of their overlap, was checked
    and accepted against each. A chain through row 2 would merge the two views: only row 2 goes."""
    from curation.dedup.alignment import Alignment, Box
    from curation.dedup.crops import AlignedDedup

    table = pa.table({"key": ["view-a", "view-b", "overlap"], "width": [960, 960, 880], "height": [640, 640, 600],
                      "format": ["jpeg"] * 3, "quality": [90] * 3, "nbytes": [1000] * 3, "source": ["folder"] * 3,
                      "slice": [0, 0, 0], "row": [0, 1, 2]})
    inside = Alignment(Box(0.05, 0.03, 0.92, 0.94), 0.97)
    merges = AlignedDedup()._merges(table, {(0, 2): (2, inside), (1, 2): (2, inside)})
    assert [(m.dropped, m.kept) for m in merges] == [((0, 2), (0, 0))]
    assert merges[0].detail.startswith("a crop of view-a (left 5.0%, top 3.0%, right 3.0%, bottom 3.0%;")
    assert merges[0].why == "most pixels (960x640 against 880x600)"


def test_add_and_exclude_follow_the_same_rules(tmp_path):
    base = photo(5, W, H)
    q70, q95 = encode(base, "JPEG", quality=70), encode(base, "JPEG", quality=95)
    cropped = encode(crop(base, 0.05), "JPEG", quality=90)
    marked = encode(overlay(base), "JPEG", quality=90)
    out = tmp_path / "ds"
    run(write(tmp_path / "first", {"photo-q70.jpg": q70}), out)
    # the crop and the overlay go, and the better re-encode at the same size replaces the q70
    add(FolderSource(str(write(tmp_path / "more", {"crop.jpg": cropped, "overlay.jpg": marked, "q95.jpg": q95}))),
        out, config(), InlineEngine())
    dataset = Dataset(str(out))
    assert kept_bytes(dataset) == {q95}
    reasons = {Path(r["source_id"]).stem: r["reason"] for r in rejects_of(out)}
    assert reasons == {"crop": "near-duplicate", "overlay": "near-duplicate", "photo-q70": "near-duplicate"}
    assert verify_dataset(str(out)).ok
    # the same copies, curated elsewhere with --exclude of that dataset, are all dropped
    dataset = run(write(tmp_path / "elsewhere", {"crop.jpg": cropped, "overlay.jpg": marked,
                                                 "other.jpg": encode(photo(6, W, H), "JPEG")}),
                  tmp_path / "train", exclude=(str(out),))
    assert len(dataset) == 1
    assert {Path(r["source_id"]).stem: r["reason"] for r in rejects_of(tmp_path / "train")} == {
        "crop": "excluded", "overlay": "excluded"}


def test_a_dataset_made_before_signatures_reads_and_takes_an_add(tmp_path):
    base = photo(7, W, H)
    out = tmp_path / "ds"
    run(write(tmp_path / "first", {"photo.jpg": encode(base, "JPEG", quality=92),
                                   "same.jpg": encode(base, "JPEG", quality=92),
                                   "other.jpg": encode(photo(8, W, H), "JPEG")}), out)
    # what a dataset made before this change looks like: no signatures, dedup records without why
    (out / DATASET_SIGNATURES).unlink()
    records = out / "work" / "dedup.parquet"
    pq.write_table(pq.read_table(records).drop_columns(["kept_because"]), records)
    assert verify_dataset(str(out)).ok
    add(FolderSource(str(write(tmp_path / "more", {"crop.jpg": encode(crop(base, 0.05), "JPEG", quality=90),
                                                   "third.jpg": encode(photo(9, W, H), "JPEG")}))),
        out, config(), InlineEngine())
    dataset = Dataset(str(out))
    # the old samples have no signature: the crop stage cannot see them, only pHash can
    manifest = dataset.manifest["curation"]
    assert manifest["dedup"]["unsigned"] == 2
    assert len(dataset) in (3, 4)  # the crop stays unless its pHash is within the radius
    stored = pq.read_table(out / DATASET_SIGNATURES)
    assert set(stored["key"].to_pylist()) <= set(dataset.index["key"].to_pylist())
    assert stored.num_rows == len(dataset) - 2  # only what was added has a signature
    whys = pq.read_table(records)["kept_because"].to_pylist()
    assert whys[0] is None  # the old record of same.jpg, merged before reasons were recorded
    assert verify_dataset(str(out)).ok


@pytest.mark.parametrize("mode, kept", [("off", 3), ("exact", 2), ("pixels", 1), ("crops", 1)])
def test_each_mode_merges_what_it_says(tmp_path, mode, kept):
    base = photo(10, W, H)
    same = encode(base, "JPEG", quality=92)
    files = {"a.jpg": same, "b-same-bytes.jpg": same, "c-half.jpg": encode(base.resize((W // 2, H // 2)), "JPEG")}
    dataset = run(write(tmp_path / "in", files), tmp_path / "ds", mode=mode)
    assert len(dataset) == kept


@pytest.mark.parametrize("content", [b"not parquet at all", "other-schema"])
def test_a_hostile_signature_file_is_one_line_and_changes_nothing(tmp_path, capsys, content):
    from curation.cli import main

    out = tmp_path / "ds"
    run(write(tmp_path / "first", {"photo.jpg": encode(photo(11, W, H), "JPEG")}), out)
    path = out / DATASET_SIGNATURES
    if content == "other-schema":
        pq.write_table(pa.table({"key": ["x"], "windows": [1]}), path)
    else:
        path.write_bytes(content)
    before = {p.name: p.read_bytes() for p in (out / "shards").iterdir()}
    more = write(tmp_path / "more", {"other.jpg": encode(photo(12, W, H), "JPEG")})
    for argv in (["folder", str(more), "--out", str(out), "--add", "--no-ray", "--min-side", "64"],
                 ["folder", str(more), "--out", str(tmp_path / "train"), "--exclude", str(out), "--no-ray",
                  "--min-side", "64"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "signature file" in err[0] and "Traceback" not in err[0]
    assert {p.name: p.read_bytes() for p in (out / "shards").iterdir()} == before


def test_exclude_reads_the_signatures_of_a_dataset_at_a_url(tmp_path):
    import fsspec

    base = photo(14, W, H)
    test_set = tmp_path / "test-set"
    run(write(tmp_path / "first", {"photo.jpg": encode(base, "JPEG", quality=92)}), test_set)
    memory = fsspec.filesystem("memory")
    memory.put(str(test_set), "/exclude-test-set", recursive=True)
    try:
        from curation import signature_files as signatures

        remote = signatures.of_dataset("memory:///exclude-test-set")
        assert remote is not None and remote.equals(signatures.of_dataset(test_set))
        cropped = encode(crop(base, 0.05), "JPEG", quality=90)
        dataset = run(write(tmp_path / "elsewhere", {"crop.jpg": cropped, "other.jpg": encode(photo(15, W, H))}),
                      tmp_path / "train", exclude=("memory:///exclude-test-set",))
    finally:
        memory.rm("/exclude-test-set", recursive=True)
    assert len(dataset) == 1
    [reject] = rejects_of(tmp_path / "train")
    assert reject["reason"] == "excluded" and reject["detail"].endswith("in memory:///exclude-test-set")
