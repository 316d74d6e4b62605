"""One admission policy: `anyres-shards pack` and `anyres-curate folder` keep the same files
of a folder, with the same metadata, and reject the others with the same reasons."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from curation.engine import InlineEngine
from curation.entry import curate
from curation.sources.folder import FolderSource
from shards import Dataset
from shards.intake.pack import PackConfig, pack_folder
from tests.factories import blotches, encode

from .helpers import fast_config


def mpo(seed: int) -> bytes:
    """A camera MPO file: two JPEG frames, the first one the photo."""
    buffer = io.BytesIO()
    first, second = blotches(400, 300, seed=seed), blotches(400, 300, seed=seed + 1)
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    return buffer.getvalue()


def rgba(seed: int, opaque: bool) -> bytes:
    image = blotches(400, 300, seed=seed).convert("RGBA")
    if not opaque:
        alpha = np.full((300, 400), 255, np.uint8)
        alpha[:40, :40] = 0
        image.putalpha(Image.fromarray(alpha))
    return encode(image, "PNG")


CASES = {  # name -> reason, None when kept
    "photo.jpg": None, "grey.jpg": None, "opaque.png": None, "camera.mpo.jpg": None,
    "cmyk.jpg": "unsupported-mode", "palette.png": "unsupported-mode", "cutout.png": "transparent",
    "animated.gif": "animated", "small.jpg": "too-small", "notes.png": "not-an-image",
}


def test_pack_and_curate_admit_the_same_files(tmp_path):
    folder = tmp_path / "in"
    (folder / "nested").mkdir(parents=True)
    frames = [blotches(300, 300, seed=s).convert("P") for s in (7, 8)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    files = {"photo.jpg": encode(blotches(400, 300, seed=1)), "grey.jpg": encode(blotches(300, 400, seed=2).convert("L")),
             "opaque.png": rgba(3, opaque=True), "camera.mpo.jpg": mpo(4),
             "cmyk.jpg": encode(blotches(400, 300, seed=5).convert("CMYK")),
             "palette.png": encode(blotches(400, 300, seed=6).convert("P"), "PNG"), "cutout.png": rgba(9, opaque=False),
             "animated.gif": gif.getvalue(), "small.jpg": encode(blotches(100, 80, seed=10)),
             "notes.png": b"not an image\n"}
    for name, data in files.items():
        (folder / "nested" / name).write_bytes(data)
    (folder / "loop").symlink_to(folder, target_is_directory=True)

    pack_folder(folder, tmp_path / "packed", PackConfig(min_side=256))
    curate(FolderSource(str(folder)), tmp_path / "curated", fast_config(min_side=256), InlineEngine())

    expected_rejects = {f"nested/{n}": r for n, r in CASES.items() if r} | {"loop": "symlink-loop"}
    for out in (tmp_path / "packed", tmp_path / "curated"):
        rejects = pq.read_table(out / "work" / "rejects.parquet").to_pylist()
        assert {r["source_id"]: r["reason"] for r in rejects} == expected_rejects, out.name
    packed, curated = (Dataset(str(tmp_path / d)).index for d in ("packed", "curated"))
    columns = ["key", "width", "height", "orientation", "format", "ext", "mode", "nbytes", "sha256", "phash",
               "source", "source_id", "title"]
    assert packed.select(columns).to_pylist() == curated.select(columns).to_pylist()
    assert sorted(packed["source_id"].to_pylist()) == sorted(f"nested/{n}" for n, r in CASES.items() if r is None)
    assert {r["source_id"]: r["mode"] for r in packed.to_pylist()}["nested/camera.mpo.jpg"] == "RGB"
