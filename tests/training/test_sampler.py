"""What gets drawn: scale and position distributions (KS tests, fixed seeds), streams, skips."""

import numpy as np
import pytest
from scipy import stats

from training.geometry import scale_cdf
from training.loader.sampler import Skip, StreamConfig, draw_patches

ALPHA = 0.01  # fixed seeds make these deterministic; the level says how surprising a failure is


def many_draws(config, sizes, n, seed=0):
    rng = np.random.default_rng(seed)
    return [d for i in range(n) for d in draw_patches(*sizes[i % len(sizes)], config, rng)]


@pytest.mark.parametrize("distribution", ["uniform", "log-uniform"])
def test_scale_follows_the_chosen_distribution_in_each_images_range(distribution):
    config = StreamConfig(size=64, distribution=distribution)
    draws = many_draws(config, [(3000, 2000), (800, 1200), (640, 640)], 3000)
    quantiles = [float(scale_cdf(np.array([d.scale]), 64, d.canvas.n, distribution)[0]) for d in draws]
    assert stats.kstest(quantiles, "uniform").pvalue > ALPHA
    # ...and not the other one: the test can tell the two apart.
    other = "uniform" if distribution == "log-uniform" else "log-uniform"
    wrong = [float(scale_cdf(np.array([d.scale]), 64, d.canvas.n, other)[0]) for d in draws]
    assert stats.kstest(wrong, "uniform").pvalue < ALPHA


def test_scale_cap_and_s_min():
    config = StreamConfig(size=64, s_min=100, s_max=700)
    draws = many_draws(config, [(3000, 2000)], 2000)
    scales = np.array([d.scale for d in draws])
    assert scales.min() >= 100 and scales.max() <= 700
    assert stats.kstest((scales - 100) / 600, "uniform").pvalue > ALPHA


def test_window_position_is_uniform_where_the_window_fits():
    draws = many_draws(StreamConfig(size=64), [(1500, 1000)], 3000, seed=1)
    for attr in ("cu", "cv"):
        # Given S, the centre is uniform on [-(0.5 - p/2S), 0.5 - p/2S]: map each to [0, 1].
        mapped = [(getattr(d, attr) + (0.5 - d.extent / 2)) / (1 - d.extent) for d in draws]
        assert stats.kstest(mapped, "uniform").pvalue > ALPHA
    # The canvas slides over every whole-pixel offset along the longer side, uniformly.
    offsets = np.array([d.canvas.ox for d in draws])
    assert all(d.canvas.oy == 0 and d.canvas.n == 1000 for d in draws)
    counts = np.bincount(offsets * 10 // 501, minlength=10)
    assert stats.chisquare(counts).pvalue > ALPHA


def test_global_stream_renders_whole_canvases_at_the_base_resolution():
    draws = many_draws(StreamConfig(stream="global", size=128, patches_per_image=2), [(1000, 600)], 50)
    assert len(draws) == 100
    for d in draws:
        assert d.scale == 128 and d.size == 128 and np.allclose(d.transform(), np.eye(3))


def test_too_small_images_are_skipped_with_a_reason_unless_upsampling():
    rng = np.random.default_rng(0)
    with pytest.raises(Skip) as info:
        draw_patches(200, 100, StreamConfig(size=128), rng)
    assert info.value.reason == "too-small"
    with pytest.raises(Skip):
        draw_patches(200, 100, StreamConfig(stream="global", size=128), rng)
    up = draw_patches(200, 100, StreamConfig(size=128, upsample=True), rng)
    assert up[0].scale == 128 and up[0].canvas.n == 100


def test_config_rejects_windows_larger_than_the_canvas():
    with pytest.raises(ValueError):
        StreamConfig(size=256, s_min=128)
    with pytest.raises(ValueError):
        StreamConfig(size=64, s_min=512, s_max=256)
