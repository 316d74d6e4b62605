"""bench/bench_mechanism.py's pipeline, seconds long: the data it makes, the arms it trains through
the real CLI, and its measure on textured and texture-free patches."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from bench_mechanism import ARMS, SCALES, R, run_tasks, seed_tasks  # noqa: E402
from mechanism_data import Texture, make_sets  # noqa: E402
from mechanism_measure import measure_seed, real_patches, tone  # noqa: E402

from training.eval.spectrum import tone_power  # noqa: E402

TEXTURE = Texture(freq=26.0, angle=20.0, amplitude=20.0)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    work = tmp_path_factory.mktemp("mechanism")
    return work, *make_sets(work, count=4, side=8 * R, texture=TEXTURE)


def test_the_twin_set_has_the_same_layouts_and_only_the_texture_differs(sets):
    work, _, _ = sets
    for i in range(4):
        textured = np.asarray(Image.open(work / "images-textured" / f"img-{i:04d}.png"), dtype=np.float64)
        twin = np.asarray(Image.open(work / "images-twin" / f"img-{i:04d}.png"), dtype=np.float64)
        difference = (textured - twin).mean(-1)  # the texture is grey: the same in every channel
        assert np.abs((textured - twin) - difference[..., None]).max() <= 1.0  # rounding only
        power = tone_power(difference[None], TEXTURE.freq / (8 * R), TEXTURE.radians)[0]
        assert power == pytest.approx(TEXTURE.amplitude**2 / 2, rel=0.05)


def test_the_measure_sees_the_texture_in_real_patches_and_none_in_the_twins(sets):
    _, textured, twin = sets
    for k in SCALES:
        scale = k * R
        with_texture = tone(real_patches(textured, scale, 8)[0], TEXTURE, scale)
        without = tone(real_patches(twin, scale, 8)[0], TEXTURE, scale)
        # At 2R the loader's low-pass keeps about 3/4 of the power at 0.8x its Nyquist.
        assert with_texture > 0.5 * TEXTURE.amplitude**2 / 2
        assert without < 1e-2 * with_texture


def test_a_texture_that_r_would_show_is_refused():
    with pytest.raises(SystemExit, match="R would show it"):
        Texture(freq=18.0, angle=0.0).check(R)
    with pytest.raises(SystemExit, match="cannot show it"):
        Texture(freq=40.0, angle=0.0).check(R)


def test_a_subset_of_arms_trains_only_them_and_the_stage_1_they_learn_from(sets):
    work, textured, twin = sets
    names = [t.name for t in seed_tasks(work, 0, textured, twin, 1, 2, arms=("stage2", "stage2-twin"))]
    assert names == ["0/stage1", "0/stage2", "0/stage2-twin"]
    names = [t.name for t in seed_tasks(work, 0, textured, twin, 1, 2, arms=("stage2-noscale",))]
    assert names == ["0/stage1", "0/stage1-noscale", "0/stage2-noscale"]


@pytest.mark.slow
def test_every_arm_trains_through_the_cli_and_is_measured(sets):
    work, textured, twin = sets
    tasks = seed_tasks(work, 0, textured, twin, kimg1=0.016, kimg2=0.016)
    finished = []
    run_tasks(tasks, jobs=2, work=work, on_done=lambda task, done: finished.append(task.name))
    assert sorted(finished) == sorted(t.name for t in tasks)
    # A stage 2 starts only after the stage 1 it learns from.
    assert finished.index("0/stage2") > finished.index("0/stage1")
    result = measure_seed(work / "seed0", textured, TEXTURE, R, SCALES, n=8)
    for arm in ARMS + ("stage1-noscale",):
        assert all(np.isfinite(result[arm]["rendered"][str(k)]) and result[arm]["rendered"][str(k)] >= 0
                   for k in SCALES)
    assert set(result["stage1"]["upsampled"]) == {"2", "4", "8"}
    assert all(result[arm]["teacher_gap"] >= 0 for arm in ARMS if arm != "stage1")
    # A rerun finds every arm finished and trains nothing again.
    again = []
    rerun = seed_tasks(work, 0, textured, twin, kimg1=0.016, kimg2=0.016)
    run_tasks(rerun, jobs=2, work=work, on_done=lambda task, done: again.append(task.seconds))
    assert again == [None] * len(rerun)
    # Scoring a subset reads only those runs.
    subset = measure_seed(work / "seed0", textured, TEXTURE, R, SCALES, n=8, runs=["stage1", "stage2"])
    assert set(subset) == {"real", "stage1", "stage2"} and subset["stage2"]["teacher_gap"] >= 0
