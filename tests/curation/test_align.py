"""The alignment check behind crop- and overlay-robust dedup (`curation.dedup.alignment`), and the
signature it reads (`curation.dedup.image_signature`)."""

import numpy as np
import pytest
from PIL import Image

from curation.dedup.alignment import Box, accept, align, phase_shift, resample, spectrum
from curation.dedup.image_signature import SIGNATURE_BYTES, THUMB_SIDE, WINDOWS, signature
from tests.factories import blotches

from .corpus import photo


def thumb(image: Image.Image) -> np.ndarray:
    return np.frombuffer(signature(image).thumb, np.uint8).reshape(THUMB_SIDE, THUMB_SIDE)


def test_the_signature_is_deterministic_and_as_large_as_stated():
    image = photo(0, 640, 480)
    a, b = signature(image), signature(image.copy())
    assert a == b
    assert len(a.windows) + len(a.thumb) + 2 == SIGNATURE_BYTES == 8 * len(WINDOWS) + THUMB_SIDE**2 + 2


def test_phase_shift_finds_a_whole_pixel_shift_both_ways():
    a = np.asarray(blotches(THUMB_SIDE, THUMB_SIDE, seed=3).convert("L"), np.float32)
    shifted = np.asarray(Image.fromarray(a).transform(a.shape[::-1], Image.Transform.AFFINE, (1, 0, -2, 0, 1, 1)))
    dx, dy = phase_shift(a, spectrum(shifted))
    assert round(dx) == 2 and round(dy) == -1
    assert np.allclose(phase_shift(a, spectrum(a)), 0, atol=1e-9)


def test_resampling_the_whole_frame_is_the_identity():
    t = thumb(photo(1, 640, 480)).astype(np.float32)
    assert np.abs(resample(t, Box(0, 0, 1, 1)) - t).max() < 1e-4


@pytest.mark.parametrize("margins", [(0.05, 0.05, 0.05, 0.05), (0.05, 0.05, 0, 0), (0, 0.03, 0.04, 0)])
def test_a_crop_is_found_inside_its_original_where_it_was_cut(margins):
    image = photo(2, 960, 640)
    w, h = image.size
    left, top, right, bottom = margins
    inner = image.crop((round(left * w), round(top * h), w - round(right * w), h - round(bottom * h)))
    aspect = (inner.height / h) / (inner.width / w)
    found = align(thumb(image), thumb(inner), Box(0.015, 0.015, 0.97, 0.97), aspect)
    assert accept(found, 0.9)
    assert np.allclose(found.box.margins(), margins, atol=0.02)


def test_a_shifted_view_sticks_out_of_the_frame_and_is_refused():
    big = photo(3, 1600, 800)
    a, b = big.crop((0, 0, 1000, 800)), big.crop((400, 0, 1400, 800))  # the frame moved by 40%
    found = align(thumb(a), thumb(b), Box(0.015, 0.015, 0.97, 0.97), 1.0)
    assert not accept(found, 0.9)


def test_a_different_photo_does_not_align():
    found = align(thumb(photo(4, 640, 480)), thumb(photo(5, 640, 480)), Box(0.015, 0.015, 0.97, 0.97), 1.0)
    assert not accept(found, 0.9)
