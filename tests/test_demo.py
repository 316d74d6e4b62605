"""README's first command, in its quick form (issue 14): from this checkout to a trained model,
its images at 1x to 8x R, a zoom, its scores and its report, writing every file the demo
promises. Runs the real script end to end (Ray included), as a new user would."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT.parent / "shared" / "photos"

pytestmark = pytest.mark.slow


def photo_folder(root: Path) -> list[str]:
    """The demo's argument: nothing for ../shared/photos (its default), else a folder of made-up
    photos, so that the demo runs wherever the checkout is."""
    if PHOTOS.is_dir():
        return []
    from tests.factories import textured

    root.mkdir()
    for i in range(8):
        textured(640 + 32 * i, 480, seed=i).save(root / f"photo-{i}.jpg", quality=90)
    return [str(root)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("demo")
    out = work / "out"
    env = {**os.environ, "ANYRES_DEMO_OUT": str(out)}
    result = subprocess.run(["bash", "scripts/demo.sh", "--quick", *photo_folder(work / "photos")], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result.stdout


def test_the_quick_demo_writes_every_promised_file(demo):
    out, _ = demo
    run = out / "run"
    promised = [out / "photos" / "dataset.json", out / "photos" / "CARD.md", out / "photos" / "ATTRIBUTION.md",
                out / "photos-sizes.png", out / "photos-grid.png", out / "preview" / "contact_sheet.png",
                out / "stage1" / "checkpoint.pt", out / "stage1" / "report.html", run / "checkpoint.pt",
                run / "report.html", run / "curves.png", run / "metrics.jsonl",
                run / "generated" / "zoom-seed0000.webp"]
    promised += [run / "generated" / f"{k}x" / f"seed{s:04d}.png" for k in (1, 2, 4, 8) for s in range(4)]
    assert [str(p) for p in promised if not p.is_file()] == []
    assert Image.open(run / "generated" / "8x" / "seed0003.png").size == (256, 256)


def test_the_demo_scores_both_ways_of_reaching_4r_and_says_where_everything_is(demo):
    out, stdout = demo
    rows = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"kid-full", "kid-patch", "kid-patch-up", "hf-patch", "hf-patch-up", "spectrum-patch",
            "spectrum-patch-up"} <= {r["metric"] for r in rows}
    assert (out / "run" / "spectrum.png").exists() and (out / "run" / "report" / "spectrum.png").exists()
    for step in range(1, 9):
        assert f"== demo {step}/8" in stdout
    assert f"open {out / 'run' / 'report.html'}" in stdout
