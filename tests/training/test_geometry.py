"""DESIGN.md 3 as arithmetic: the transform, the native window, the orientation maps."""

import numpy as np
import pytest
from PIL import Image

from training.geometry import Canvas, PatchDraw, draw_patch, patch_to_native, pixel_centres, whole_canvas
from training.loader.decode import ORIENT_OPS, display_to_stored, max_reduction, stored_to_display


def test_transform_and_window_agree_with_the_design_formulas():
    draw = PatchDraw(Canvas(ox=37, oy=0, n=900), scale=613.25, cu=0.11, cv=-0.2, size=64)
    t = draw.transform()
    assert np.allclose(t, [[64 / 613.25, 0, 0.11], [0, 64 / 613.25, -0.2], [0, 0, 1]])
    x0, y0, w = draw.window()
    assert x0 == pytest.approx(37 + (0.11 + 0.5 - 64 / (2 * 613.25)) * 900)
    assert y0 == pytest.approx((-0.2 + 0.5 - 64 / (2 * 613.25)) * 900)
    assert w == pytest.approx(900 * 64 / 613.25)
    # Patch edges (+-0.5) land on the window's edges; pixel centres are evenly spaced inside it.
    xs, ys = patch_to_native(draw, np.array([-0.5, 0.5]), np.array([-0.5, 0.5]))
    assert np.allclose(xs, [x0, x0 + w]) and np.allclose(ys, [y0, y0 + w])
    cx, _ = patch_to_native(draw, pixel_centres(64), 0.0)
    assert np.allclose(cx, x0 + (np.arange(64) + 0.5) * w / 64)


@pytest.mark.parametrize("size", [(500, 300), (300, 500), (256, 256)])
def test_random_draws_stay_inside_canvas_and_image(size):
    rng = np.random.default_rng(0)
    width, height = size
    for _ in range(500):
        draw = draw_patch(width, height, 32, rng, s_min=32)
        c = draw.canvas
        assert c.n == min(width, height) and 0 <= c.ox <= width - c.n and 0 <= c.oy <= height - c.n
        assert 32 <= draw.scale <= c.n  # never upsampled: S_max is the native side
        x0, y0, w = draw.window()
        assert c.ox - 1e-9 <= x0 and x0 + w <= c.ox + c.n + 1e-9
        assert c.oy - 1e-9 <= y0 and y0 + w <= c.oy + c.n + 1e-9


def test_too_small_cap_and_upsample():
    rng = np.random.default_rng(0)
    assert draw_patch(100, 80, 64, rng, s_min=128) is None
    up = draw_patch(100, 80, 64, rng, s_min=128, upsample=True)
    assert up.scale == 128 and up.canvas.n == 80
    assert all(draw_patch(4000, 3000, 64, rng, s_min=64, s_max=512).scale <= 512 for _ in range(200))


def test_global_view_is_the_whole_canvas_with_identity_transform():
    draw = whole_canvas(640, 480, 256, np.random.default_rng(0))
    assert np.allclose(draw.transform(), np.eye(3))
    x0, y0, w = draw.window()
    assert (x0, y0, w) == (draw.canvas.ox, draw.canvas.oy, 480)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_maps_match_pillow_transpose(orientation):
    sw, sh = 7, 4
    stored = Image.fromarray(np.arange(sw * sh, dtype=np.int32).reshape(sh, sw))
    shown = np.asarray(stored if orientation == 1 else stored.transpose(ORIENT_OPS[orientation]))
    for y in range(shown.shape[0]):
        for x in range(shown.shape[1]):
            xs, ys = display_to_stored(x + 0.5, y + 0.5, orientation, sw, sh)
            assert shown[y, x] == int(ys) * sw + int(xs)
            assert stored_to_display(xs, ys, orientation, sw, sh) == (x + 0.5, y + 0.5)


def test_reduction_never_goes_below_the_target_density():
    for density in np.linspace(0.01, 1.0, 300):
        r = max_reduction(density)
        assert 1 / r >= density - 1e-12  # at least the window's pixel density...
        assert r == 1 or 1 / (2 * r) < density  # ...and the largest such power of two
    assert max_reduction(0.2, oversample=2.0) == 2
