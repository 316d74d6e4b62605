"""anyres-generate (issue 13): images of any size by tiles that join exactly, their sidecars, and
the zoom. The snapshot is TINY_G's, written as training writes one; images are a few hundred
pixels, so every test runs in well under a second or two."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.cli_outcome import run_main
from training import checkpoint
from training.commands.generate import main
from training.generate import zoom as zoom_module
from training.generate.outputs import mapped
from training.generate.png import PngStream
from training.generate.tiles import Tiling, render_rows, render_tiles
from training.geometry import patch_transform
from training.networks.render import identity_view, to_uint8

from .gan_helpers import TINY_G
from .generate_helpers import save_snapshot

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks run fastest on one thread


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    return save_snapshot(tmp_path_factory.mktemp("generate") / "network-snapshot-000000.016.pt")


@pytest.fixture(scope="module")
def generator(snapshot):
    return checkpoint.load_generator(snapshot)


def generate(capsys, *argv) -> str:
    code = run_main(main, [str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err, captured.err
    return captured.out


def tiled(g, tiling: Tiling, seed: int = 0, batch: int = 5) -> torch.Tensor:
    """The float image (3, H, W) assembled from render_tiles: what the PNG holds before rounding."""
    p = tiling.tile
    full = torch.zeros(3, tiling.rows * p, tiling.columns * p)
    for chunk, images in render_tiles(g, mapped(g, seed, 1.0), tiling, batch):
        for (r, c), tile in zip(chunk, images):
            full[:, r * p:(r + 1) * p, c * p:(c + 1) * p] = tile
    return full[:, :tiling.height, :tiling.width]


def one_pass(g, scale: int, width: int, height: int, seed: int = 0) -> torch.Tensor:
    """The canvas at `scale` rendered by one square patch of side max(W, H), centred, cropped to W x H."""
    n = max(width, height)
    t = torch.from_numpy(patch_transform(scale, 0.0, 0.0, n))[None]
    with torch.no_grad():
        image = g.synthesis(mapped(g, seed, 1.0), t, torch.tensor([float(scale)]), n, grid="exact")[0]
    x0, y0 = (n - width) // 2, (n - height) // 2
    return image[:, y0:y0 + height, x0:x0 + width]


# Sizes -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, size", [(["--width", 100, "--height", 37], (100, 37)),
                                        (["--size", 250], (250, 250)),
                                        (["--width", 37, "--height", 70], (37, 70))])
def test_a_size_that_is_not_a_multiple_of_the_tile_comes_out_exact(snapshot, tmp_path, capsys,
                                                                    argv, size):
    out = generate(capsys, snapshot, "--out", tmp_path, "--tile", 32, *argv)
    image = Image.open(tmp_path / "seed0000.png")
    assert image.size == size and image.mode == "RGB"
    assert f"{size[0]} x {size[1]}" in out


def test_the_default_size_is_the_generators_resolution(snapshot, tmp_path, capsys):
    generate(capsys, snapshot, "--out", tmp_path / "new" / "folder")
    assert Image.open(tmp_path / "new" / "folder" / "seed0000.png").size == (TINY_G.resolution,) * 2


def test_jpeg_and_webp_by_extension_or_flag(snapshot, tmp_path, capsys):
    generate(capsys, snapshot, "--out", tmp_path / "one.jpg", "--width", 90, "--height", 40, "--seeds", 7)
    generate(capsys, snapshot, "--out", tmp_path / "set", "--size", 50, "--format", "webp", "--seeds", "1-2")
    assert Image.open(tmp_path / "one.jpg").format == "JPEG" and Image.open(tmp_path / "one.jpg").size == (90, 40)
    assert json.loads((tmp_path / "one.json").read_text())["seed"] == 7
    for seed in (1, 2):
        image = Image.open(tmp_path / "set" / f"seed{seed:04d}.webp")
        assert image.format == "WEBP" and image.size == (50, 50)
    assert not list(tmp_path.rglob("*.tmp"))


# Tiles join ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("width, height, tile", [(64, 64, 16), (250, 250, 32), (100, 38, 32), (38, 100, 16)])
def test_tiles_are_exact_crops_of_a_one_pass_render(generator, width, height, tile):
    # Any size that is a multiple of the size step has a one-pass render (and a non-square one is
    # a crop of a larger square patch); tiles that overhang it are cropped.
    scale = min(width, height)
    image = tiled(generator, Tiling(width, height, tile))
    reference = one_pass(generator, scale, width, height)
    assert image.shape == reference.shape == (3, height, width)
    assert (image - reference).abs().max() < 1e-5


def test_the_png_holds_the_one_pass_render(generator, snapshot, tmp_path, capsys):
    generate(capsys, snapshot, "--out", tmp_path, "--size", 96, "--tile", 32, "--seeds", 3)
    png = np.asarray(Image.open(tmp_path / "seed0003.png")).astype(int)
    reference = to_uint8(one_pass(generator, 96, 96, 96, seed=3)[None])[0].astype(int)
    assert np.abs(png - reference).max() <= 1  # 1e-5 apart before rounding: rarely a step of 1
    assert (png == reference).mean() > 0.999


def border_and_inner_steps(image: torch.Tensor, tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    """|x[:, c + 1] - x[:, c]| of every column pair across a tile border, and of every pair inside tiles."""
    steps = (image[:, :, 1:] - image[:, :, :-1]).abs().mean(dim=(0, 1))  # one per column pair
    border = torch.zeros_like(steps, dtype=torch.bool)
    border[tile - 1::tile] = True
    return steps[border], steps[~border]


@pytest.mark.parametrize("size", [101, 99])  # odd: no one-pass render exists, tiles still join
def test_differences_across_tile_borders_match_those_inside_tiles(generator, size):
    tile = 16
    image = tiled(generator, Tiling(size, size, tile))
    for picture in (image, image.transpose(1, 2)):  # columns, then rows
        border, inner = border_and_inner_steps(picture, tile)
        assert len(border) == (size - 1) // tile
        assert inner.min() <= border.min() and border.max() <= inner.max()
        assert 0.5 < border.mean() / inner.mean() < 2


def test_tiles_join_whatever_the_batch(generator):
    tiling = Tiling(70, 45, 16)
    assert torch.allclose(tiled(generator, tiling, batch=1), tiled(generator, tiling, batch=7), atol=1e-6)
    # The uint8 rows that the files are written from are the same tiles, whole rows at a time.
    rows = np.concatenate([r.copy() for r in render_rows(generator, mapped(generator, 0, 1.0), tiling, 3)])
    assert np.array_equal(rows, to_uint8(tiled(generator, tiling, batch=3)[None])[0])


# The streamed PNG ---------------------------------------------------------------------------------

def test_a_png_written_by_bands_decodes_to_its_pixels(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    with open(tmp_path / "x.png", "wb") as f:
        png = PngStream(f, 53, 37)
        for y in range(0, 37, 10):
            png.write(pixels[y:y + 10])
        png.close()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.png")), pixels)
    with open(tmp_path / "y.png", "wb") as f, pytest.raises(ValueError, match="10 of 37"):
        png = PngStream(f, 53, 37)
        png.write(pixels[:10])
        png.close()


# Sidecars and seeds -------------------------------------------------------------------------------

def test_the_sidecar_says_how_the_image_was_made(snapshot, tmp_path, capsys):
    generate(capsys, snapshot, "--out", tmp_path, "--width", 60, "--height", 30, "--seeds", "4-5,2",
             "--psi", 0.7, "--tile", 16, "--batch", 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "seed0002.json", "seed0002.png", "seed0004.json", "seed0004.png", "seed0005.json", "seed0005.png"]
    record = json.loads((tmp_path / "seed0005.json").read_text())
    assert record["seed"] == 5 and record["psi"] == 0.7
    assert (record["width"], record["height"], record["scale"], record["tile"], record["batch"]) == (60, 30, 30, 16, 3)
    assert record["canvas"] == {"u": [-1.0, 1.0], "v": [-0.5, 0.5]}
    assert record["tiles"] == 4 * 2 and record["format"] == "png" and record["device"] == "cpu"
    import hashlib
    assert record["snapshot"]["sha256"] == hashlib.sha256(snapshot.read_bytes()).hexdigest()
    assert record["snapshot"]["name"] == snapshot.name and record["snapshot"]["bytes"] == snapshot.stat().st_size
    assert record["generator"]["resolution"] == TINY_G.resolution and record["generator"]["z_dim"] == TINY_G.z_dim
    assert record["anyres"] and record["config"]["seeds"] == [4, 5, 2]


def test_seeds_and_psi_decide_the_image(snapshot, tmp_path, capsys):
    generate(capsys, snapshot, "--out", tmp_path, "--size", 32, "--seeds", "0-1")
    generate(capsys, snapshot, "--out", tmp_path / "again", "--size", 32, "--seeds", "1")
    generate(capsys, snapshot, "--out", tmp_path / "psi", "--size", 32, "--seeds", "1", "--psi", 0)
    read = lambda p: np.asarray(Image.open(p))  # noqa: E731
    assert np.array_equal(read(tmp_path / "seed0001.png"), read(tmp_path / "again" / "seed0001.png"))
    assert not np.array_equal(read(tmp_path / "seed0000.png"), read(tmp_path / "seed0001.png"))
    assert not np.array_equal(read(tmp_path / "seed0001.png"), read(tmp_path / "psi" / "seed0001.png"))


# Zoom ---------------------------------------------------------------------------------------------

def test_the_zoom_path_starts_on_the_canvas_and_keeps_the_window_inside():
    path = zoom_module.zoom_path(9, 32, 512.0, 0.45, -0.3)
    assert path[0] == zoom_module.ZoomFrame(32.0, 0.0, 0.0)  # S = P: the whole canvas, T = I
    assert path[-1].scale == pytest.approx(512)
    ratios = [b.scale / a.scale for a, b in zip(path, path[1:])]
    assert ratios == pytest.approx([2 ** 0.5] * 8)  # geometric: a steady zoom
    for f in path:
        half = 32 / (2 * f.scale)
        assert f.cu - half >= -0.5 and f.cu + half <= 0.5 + 1e-12 and f.cv - half >= -0.5
    assert path[-1].cu == pytest.approx(0.45) and path[-1].cv == pytest.approx(-0.3)


def test_the_zoom_writes_its_frames_a_webp_and_says_whether_an_mp4_was_written(
        generator, snapshot, tmp_path, capsys):
    out = generate(capsys, snapshot, "--out", tmp_path, "--zoom", "--frames", 5, "--frame-size", 32,
                   "--zoom-to", 256, "--zoom-center", "0.2,0.1", "--seeds", "0,3")
    for seed in (0, 3):
        frames = sorted((tmp_path / f"zoom-seed{seed:04d}").glob("frame-*.png"))
        assert len(frames) == 5 and Image.open(frames[0]).size == (32, 32)
        webp = Image.open(tmp_path / f"zoom-seed{seed:04d}.webp")
        assert webp.n_frames == 5 and webp.size == (32, 32)
        record = json.loads((tmp_path / f"zoom-seed{seed:04d}.json").read_text())
        assert [f["scale"] for f in record["frames"]] == pytest.approx([32 * 8 ** (k / 4) for k in range(5)])
    # The first frame is the whole canvas at S = P, T = I: the global image.
    ws = mapped(generator, 3, 1.0)
    with torch.no_grad():
        whole = generator.synthesis(ws, *identity_view(1, 32, ws.device), 32, grid="exact")
    first = np.asarray(Image.open(tmp_path / "zoom-seed0003" / "frame-00000.png")).astype(int)
    assert np.abs(first - to_uint8(whole)[0].astype(int)).max() <= 1
    mp4 = (tmp_path / "zoom-seed0000.mp4").exists()
    assert ("no MP4" in out) != mp4
    if zoom_module.video_backend() is None:
        assert "no video writer installed" in out


def test_a_failing_video_writer_costs_only_the_mp4(snapshot, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("training.generate.outputs.video_backend", lambda: "av")
    monkeypatch.setitem(__import__("sys").modules, "av", None)  # `import av` raises ImportError
    out = generate(capsys, snapshot, "--out", tmp_path, "--zoom", "--frames", 2, "--frame-size", 16)
    assert "no MP4: av could not write it (ModuleNotFoundError" in out
    assert (tmp_path / "zoom-seed0000.webp").exists() and not list(tmp_path.glob("*.mp4"))


@pytest.mark.slow  # more than a few seconds
def test_python_m_training_generate_is_the_same_command(snapshot, tmp_path):
    import subprocess
    import sys

    from .gan_helpers import SUBPROCESS_ENV

    result = subprocess.run([sys.executable, "-m", "training", "generate", str(snapshot), "--out",
                             str(tmp_path / "x.webp"), "--width", "48", "--height", "24"],
                            capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "x.webp").size == (48, 24)
