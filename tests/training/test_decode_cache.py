"""The loader's decode cache: a small dataset is decoded once, the batches are the uncached
loader's bit for bit, and the byte budget holds."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from tests.factories import small_dataset
from training.loader.decode import Decoded
from training.loader.decode_cache import DecodeCache
from training.loader.pipeline import LoaderConfig, PatchLoader
from training.loader.sampler import StreamConfig


def decoded(side: int) -> Decoded:
    return Decoded(Image.new("RGB", (side, side)), 1, 1, (side, side))


def test_the_cache_keeps_what_fits_and_drops_the_least_recently_used():
    cache = DecodeCache(max_bytes=4 * 3 * 10 * 10)  # four 10 x 10 RGB images
    made = []

    def make(side):
        def decode():
            made.append(side)
            return decoded(side)
        return decode

    for key in "abcd":
        cache.get(key, 1, make(10))
    cache.get("a", 1, make(10))  # a hit: a is now the most recent
    cache.get("e", 1, make(10))  # over budget: b, the least recent, goes
    assert cache.hits == 1 and cache.used <= cache.max_bytes
    cache.get("b", 1, make(10))
    cache.get("a", 1, make(10))
    assert len(made) == 6 and cache.hits == 2  # b was decoded again; a was still there
    cache.get("a", 2, make(5))  # another reduction is another decode
    assert len(made) == 7
    cache.get("huge", 1, make(20))  # over a quarter of the budget: never kept
    cache.get("huge", 1, make(20))
    assert made[-2:] == [20, 20]


def test_cached_batches_are_the_uncached_ones_and_repeats_are_not_decoded_again(tmp_path):
    root = tmp_path / "ds"
    small_dataset(root, 6, size=(96, 64), fmt="JPEG")
    base = LoaderConfig(str(root), StreamConfig("patch", size=16, s_min=16), batch_size=6, seed=3,
                        shuffle_buffer=12, decode_cache_mb=0)
    cached = dataclasses.replace(base, decode_cache_mb=16)
    plain_loader, cached_loader = PatchLoader(base), PatchLoader(cached)
    for _ in range(3):  # three epochs: the second and third come from the cache
        for a, b in zip(plain_loader, cached_loader, strict=True):
            assert np.array_equal(a.image.numpy(), b.image.numpy()) and a.key == b.key
    assert cached_loader.stream._decode_cache.hits > 0
