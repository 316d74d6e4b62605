"""One rule shows a stored image as 8-bit RGB, for the contact sheets and the training loader alike."""

from __future__ import annotations

import numpy as np
from PIL import Image

from shards.format import pixels
from shards.format.pixels import FLATTEN_ON, to_rgb


def test_sixteen_bit_scales_to_eight_bits_without_clipping():
    values = np.array([[0, 257 * 100, 65535]])
    for image in (Image.fromarray(values.astype(np.uint16)).convert("I;16"), Image.fromarray(values.astype(np.int32))):
        assert np.asarray(to_rgb(image))[0, :, 0].tolist() == [0, 100, 255], image.mode
    small = Image.fromarray(np.array([[7, 200]], dtype=np.int32))  # 8-bit data in a 32-bit mode: kept
    assert np.asarray(to_rgb(small))[0, :, 1].tolist() == [7, 200]


def test_alpha_is_flattened_on_grey_and_opaque_pixels_keep_their_colour():
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 0] = (10, 200, 30, 255)  # opaque
    rgba[0, 1] = (255, 0, 0, 0)  # transparent: its stored red is not shown
    shown = np.asarray(to_rgb(Image.fromarray(rgba, "RGBA")))
    assert shown[0, 0].tolist() == [10, 200, 30] and shown[0, 1].tolist() == list(FLATTEN_ON)
    la = np.asarray(to_rgb(Image.fromarray(np.array([[[90, 0]]], np.uint8), "LA")))
    assert la[0, 0].tolist() == list(FLATTEN_ON)


def test_rgb_is_passed_through_and_the_readers_share_the_rule():
    from shards.tools import plots
    from training.loader import decode

    image = Image.new("RGB", (2, 2), (1, 2, 3))
    assert to_rgb(image) is image
    assert plots.to_rgb is pixels.to_rgb and decode.to_rgb is pixels.to_rgb
