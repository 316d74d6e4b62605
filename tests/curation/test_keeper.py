"""The keeper rule (`curation.dedup.keeper.choose`) and the JPEG quality it reads."""

import itertools

import pytest

from curation.dedup.image_signature import jpeg_quality, signature
from curation.dedup.keeper import because, choose
from shards.intake.probe import decode_image
from tests.factories import blotches, encode


def row(key, width=100, height=100, fmt="jpeg", quality=None, nbytes=1000, **provenance):
    return {"key": key, "width": width, "height": height, "format": fmt, "quality": quality, "nbytes": nbytes,
            "source": "folder", **provenance}


def kept(records):
    return records[choose(records)]["key"]


@pytest.mark.parametrize("q", [40, 60, 70, 85, 92, 95])
def test_the_estimated_jpeg_quality_is_the_encoders(q):
    decoded = decode_image(encode(blotches(320, 240, seed=q), "JPEG", quality=q))
    assert abs(jpeg_quality(decoded.quantization) - q) <= 1
    assert signature(decoded.image, decoded.quantization).quality == jpeg_quality(decoded.quantization)


def test_no_tables_no_quality():
    assert jpeg_quality(None) is None
    assert jpeg_quality({0: [1, 2, 3]}) is None
    decoded = decode_image(encode(blotches(320, 240), "PNG"))
    assert decoded.quantization is None


def test_pixels_then_quality_then_licence_then_arrival_in_every_order():
    records = [row("small-licensed", 50, 50, quality=95, license="CC BY"), row("big-q70", quality=70),
               row("big-q95", quality=95), row("big-q95-licensed", quality=95, license="CC BY", owner="someone")]
    for order in itertools.permutations(records):
        assert kept(list(order)) == "big-q95-licensed"
    assert choose(records[:3]) == 2
    assert because(records, 2, 1) == "higher quality (95 against 70)"
    assert because(records, 2, 0) == "most pixels (100x100 against 50x50)"
    assert because(records, 3, 2) == "licence and attribution"


def test_a_larger_unlicensed_copy_still_wins_on_pixels():
    records = [row("licensed", 50, 50, license="CC BY"), row("bigger", 100, 100)]
    assert choose(records) == 1 and because(records, 1, 0) == "most pixels (100x100 against 50x50)"


def test_without_a_stored_quality_equal_formats_compare_bytes_per_pixel():
    # samples of a dataset made before qualities were stored
    records = [row("thin", nbytes=500), row("rich", nbytes=2000)]
    assert choose(records) == 1 and because(records, 1, 0).startswith("more bytes per pixel, same format")
    # different formats without a quality are not compared: provenance, then arrival decide
    records = [row("webp", fmt="webp", nbytes=500), row("jpeg", nbytes=2000)]
    assert choose(records) == 0
    assert because(records, 0, 1) == "earlier in the input (the copies tie on pixels, quality and provenance)"


def test_a_lossless_copy_counts_as_full_quality():
    assert kept([row("jpeg-q95", quality=95), row("png", fmt="png", nbytes=90000)]) == "png"


def test_ties_go_to_the_earliest():
    assert choose([row("first", quality=90), row("second", quality=90)]) == 0
    assert choose([row("only")]) == 0
