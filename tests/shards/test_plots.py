import dataclasses
import io
import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from shards.format.index import index_table
from shards.format.pixels import FLATTEN_ON
from shards.format.reader import Dataset
from shards.format.schema import SampleMeta
from shards.format.writer import DatasetWriter
from shards.intake.probe import probe_image, sha256_hex
from shards.tools import plots

THUMB = 64
RED, BLUE = (220, 30, 30), (30, 30, 220)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None]
    rgb = np.stack(
        [
            np.broadcast_to(x, (height, width)),
            np.broadcast_to(y, (height, width)),
            np.full((height, width), 96.0),
        ],
        -1,
    )
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def red_left_blue_right(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image


def rotated_jpeg() -> bytes:
    # Stored landscape, red on the left; orientation 6 means "rotate 90 degrees clockwise to
    # display", so a correct reader shows a portrait image with red on top.
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(red_left_blue_right(160, 80), "JPEG", quality=95, exif=exif.tobytes())


def sample_images() -> dict[str, bytes]:
    gray = Image.fromarray(np.tile(np.linspace(0, 255, 120, dtype=np.uint8), (90, 1)), "L")
    rgba = Image.new("RGBA", (100, 100), (0, 200, 0, 0))
    rgba.paste((0, 200, 0, 255), (25, 25, 75, 75))
    sixteen = Image.fromarray((np.arange(50 * 70).reshape(50, 70) * 18).astype(np.uint16))
    return {
        "wide-jpeg": encode(gradient(1200, 300), "JPEG", quality=85),
        "tall-jpeg": encode(gradient(200, 700), "JPEG", quality=85),
        "big-jpeg": encode(gradient(1600, 1200), "JPEG", quality=85),
        "rot6": rotated_jpeg(),
        "square-png": encode(gradient(256, 256), "PNG"),
        "gray-l": encode(gray, "PNG"),
        "cmyk-jpeg": encode(gradient(300, 200).convert("CMYK"), "JPEG"),
        "rgba-png": encode(rgba, "PNG"),
        "sixteen-bit": encode(sixteen, "PNG"),
    }


def meta_for(key: str, data: bytes) -> SampleMeta:
    info = probe_image(data)
    return SampleMeta(
        key=key,
        width=info.width,
        height=info.height,
        orientation=info.orientation,
        format=info.format,
        ext=info.ext,
        mode=info.mode,
        nbytes=info.nbytes,
        sha256=info.sha256,
        phash=info.phash,
        source="folder",
        source_id=f"{key}.{info.ext}",
    )


def write_dataset(root, images: dict[str, bytes], broken: dict[str, bytes] | None = None) -> Dataset:
    """A finalised dataset of `images`; `broken` maps keys to bytes that will not decode,
    stored with the metadata of the first image so they pass the writer's checks."""
    with DatasetWriter(root) as writer:
        for key, data in images.items():
            writer.add(meta_for(key, data), data)
        template = meta_for("template", next(iter(images.values())))
        for key, data in (broken or {}).items():
            meta = dataclasses.replace(template, key=key, nbytes=len(data), sha256=sha256_hex(data))
            writer.add(meta, data)
        writer.finalize()
    return Dataset(str(root))


def decode_png(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def tile(sheet: np.ndarray, position: int, columns: int) -> np.ndarray:
    """The thumb x thumb image area of the cell at `position` (row-major)."""
    cell_w, cell_h = plots.cell_size(THUMB)
    pad = (cell_w - THUMB) // 2
    x, y = (position % columns) * cell_w + pad, (position // columns) * cell_h + pad
    return sheet[y : y + THUMB, x : x + THUMB]


@pytest.fixture
def dataset(tmp_path) -> Dataset:
    return write_dataset(tmp_path / "ds", sample_images())


def sheet_of(dataset: Dataset, path, **kwargs) -> tuple[np.ndarray, list[str]]:
    out = plots.contact_sheet(dataset, path, thumb=THUMB, **kwargs)
    assert out == path
    n, seed = kwargs.get("n", 36), kwargs.get("seed", 0)
    return decode_png(out), plots.choose_keys(dataset.index, n, seed)


def test_contact_sheet_grid_size(dataset, tmp_path):
    sheet, keys = sheet_of(dataset, tmp_path / "sheet.png", n=5)
    columns, rows = math.ceil(math.sqrt(5)), math.ceil(5 / math.ceil(math.sqrt(5)))
    cell_w, cell_h = plots.cell_size(THUMB)
    assert (columns, rows) == (3, 2)
    assert sheet.shape == (rows * cell_h, columns * cell_w, 3)
    assert len(keys) == len(set(keys)) == 5


def test_contact_sheet_caps_n_at_dataset_size(dataset, tmp_path):
    sheet, keys = sheet_of(dataset, tmp_path / "sheet.png", n=100)
    assert sorted(keys) == sorted(sample_images())
    cell_w, cell_h = plots.cell_size(THUMB)
    assert sheet.shape == (3 * cell_h, 3 * cell_w, 3)  # 9 samples: a 3 x 3 grid, not 10 x 10


def test_contact_sheet_applies_exif_orientation(dataset, tmp_path):
    sheet, keys = sheet_of(dataset, tmp_path / "sheet.png", n=9)
    image = tile(sheet, keys.index("rot6"), columns=3).astype(int)
    # Portrait: 80x160 displayed, fitted to 32x64 and centred, so the side bands are letterbox.
    assert np.all(np.abs(image[:, :12] - plots.LETTERBOX).max(axis=-1) <= 2)
    assert np.all(np.abs(image[:, -12:] - plots.LETTERBOX).max(axis=-1) <= 2)
    top, bottom = image[4:24, 24:40].mean(axis=(0, 1)), image[40:60, 24:40].mean(axis=(0, 1))
    assert top[0] > 150 and top[2] < 90, top  # red on top
    assert bottom[2] > 150 and bottom[0] < 90, bottom  # blue below


def test_contact_sheet_without_orientation_shows_stored_pixels(dataset, tmp_path):
    sheet, keys = sheet_of(dataset, tmp_path / "sheet.png", n=9, apply_orientation=False)
    image = tile(sheet, keys.index("rot6"), columns=3).astype(int)
    # Stored landscape 160x80 -> 64x32: letterbox above and below, red left, blue right.
    assert np.all(np.abs(image[:12] - plots.LETTERBOX).max(axis=-1) <= 2)
    left, right = image[24:40, 4:24].mean(axis=(0, 1)), image[24:40, 40:60].mean(axis=(0, 1))
    assert left[0] > 150 and left[2] < 90, left
    assert right[2] > 150 and right[0] < 90, right


def test_contact_sheet_seed_is_reproducible(dataset, tmp_path):
    first, keys = sheet_of(dataset, tmp_path / "a.png", n=4, seed=7)
    again, keys_again = sheet_of(dataset, tmp_path / "b.png", n=4, seed=7)
    other, other_keys = sheet_of(dataset, tmp_path / "c.png", n=4, seed=8)
    assert keys == keys_again and np.array_equal(first, again)
    assert keys != other_keys and not np.array_equal(first, other)


def test_choose_keys_draws_without_replacement():
    index = index_table([])
    assert plots.choose_keys(index, 5) == []
    keys = pa.table({"key": [f"k{i}" for i in range(50)]})
    chosen = plots.choose_keys(keys, 20, seed=3)
    assert len(chosen) == len(set(chosen)) == 20
    assert chosen == plots.choose_keys(keys, 20, seed=3)


def test_contact_sheet_marks_undecodable_samples(tmp_path):
    images = sample_images()
    truncated = images["big-jpeg"][: len(images["big-jpeg"]) // 3]
    dataset = write_dataset(
        tmp_path / "ds", images, broken={"garbage": b"not an image at all", "truncated": truncated}
    )
    sheet, keys = sheet_of(dataset, tmp_path / "sheet.png", n=11)
    columns = 4
    for key in ("garbage", "truncated"):
        image = tile(sheet, keys.index(key), columns)
        background = np.all(image == plots.FAILED, axis=-1).mean()
        assert background > 0.7, key  # the red failure tile, with a little text on it
    good = tile(sheet, keys.index("square-png"), columns)
    assert np.all(good != plots.FAILED, axis=-1).mean() > 0.9
    # Error messages carry object addresses that differ per run; the sheet must not.
    again, _ = sheet_of(dataset, tmp_path / "again.png", n=11)
    assert np.array_equal(sheet, again)


def test_decode_thumbnail_converts_odd_modes():
    images = sample_images()
    for key in ("gray-l", "cmyk-jpeg", "rgba-png", "sixteen-bit", "square-png"):
        thumbnail = plots.decode_thumbnail(images[key], THUMB)
        assert thumbnail.mode == "RGB", key
        assert max(thumbnail.size) == THUMB, key
    # Transparent corners land on neutral gray, the opaque centre keeps its green.
    rgba = np.asarray(plots.decode_thumbnail(images["rgba-png"], THUMB)).astype(int)
    assert np.abs(rgba[2, 2] - FLATTEN_ON).max() <= 2
    assert rgba[32, 32, 1] > 180 and rgba[32, 32, 0] < 30
    # 16-bit data is scaled into 8 bits, not clipped to white.
    sixteen = np.asarray(plots.decode_thumbnail(images["sixteen-bit"], THUMB))
    assert 0 < sixteen.mean() < 250


def test_decode_thumbnail_keeps_aspect_ratio():
    data = encode(gradient(2000, 1000), "JPEG")
    thumbnail = plots.decode_thumbnail(data, 128)
    assert thumbnail.size == (128, 64)
    small = plots.decode_thumbnail(encode(gradient(40, 20), "PNG"), 128)
    assert small.size == (128, 64)  # small images are fitted up to the cell too


def test_contact_sheet_of_empty_dataset(tmp_path):
    with DatasetWriter(tmp_path / "empty") as writer:
        writer.finalize()
    out = plots.contact_sheet(Dataset(str(tmp_path / "empty")), tmp_path / "sheet.png", thumb=THUMB)
    assert decode_png(out).shape[:2] == plots.cell_size(THUMB)[::-1]


def test_contact_sheet_rejects_bad_arguments(dataset, tmp_path):
    with pytest.raises(ValueError):
        plots.contact_sheet(dataset, tmp_path / "x.png", n=0)
    with pytest.raises(ValueError):
        plots.contact_sheet(dataset, tmp_path / "x.png", thumb=4)
    assert not (tmp_path / "x.png").exists()


def plot_of(index: pa.Table, path) -> np.ndarray:
    out = plots.plot_dataset(index, path, "demo")
    assert out == path
    assert not list(path.parent.glob("*.tmp"))
    return decode_png(out)


def test_plot_dataset(dataset, tmp_path):
    pixels = plot_of(dataset.index, tmp_path / "plots" / "sizes.png")
    assert pixels.shape == (6 * plots.DPI, 19 * plots.DPI, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # drawn, not a blank canvas


def test_plot_dataset_single_sample(dataset, tmp_path):
    pixels = plot_of(dataset.index.slice(0, 1), tmp_path / "one.png")
    assert pixels.shape == (6 * plots.DPI, 19 * plots.DPI, 3)


def test_plot_dataset_empty_index(tmp_path):
    empty = plot_of(index_table([]), tmp_path / "empty.png")
    assert empty.shape == (6 * plots.DPI, 19 * plots.DPI, 3)
    # Only a title and a message: far less ink than a real plot.
    assert np.mean(empty < 200) < 0.01


def test_plot_dataset_many_rows_with_shared_sizes(tmp_path):
    rng = np.random.default_rng(0)
    cameras = np.array([[4032, 3024], [3024, 4032], [6000, 4000], [1920, 1080]])
    sizes = np.concatenate([cameras[rng.integers(0, 4, 200_000)], rng.integers(100, 9000, (5_000, 2))])
    index = pa.table({"width": sizes[:, 0].astype(np.int32), "height": sizes[:, 1].astype(np.int32)})
    pixels = plot_of(index, tmp_path / "many.png")
    assert pixels.shape == (6 * plots.DPI, 19 * plots.DPI, 3)


def test_size_label():
    assert [plots.size_label(s) for s in (256, 512, 1024, 1536, 4096, 16384)] == [
        "256",
        "512",
        "1K",
        "1.5K",
        "4K",
        "16K",
    ]


def test_plot_dataset_leaves_pyplot_alone(tmp_path):
    # A fresh interpreter: other tests may have imported pyplot into this one.
    code = (
        "import sys, pyarrow as pa\n"
        "from shards.tools import plots\n"
        "table = pa.table({'width': pa.array([640], pa.int32()), 'height': pa.array([480], pa.int32())})\n"
        f"plots.plot_dataset(table, {str(tmp_path / 'p.png')!r}, 'x')\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "p.png").exists()
