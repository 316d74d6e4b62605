"""Decoded images kept across epochs, for datasets small enough to come round again.

Decoding is most of the loader's work on real photos: most are progressive JPEGs, which cost
nearly a full decode at any DCT reduction (a 13 MP one about 0.1 s on this CPU, while the tiny
network's step on its share of it takes a few ms). A large dataset comes round once per epoch,
so nothing is gained there; a small one (the demo's photos, a high-resolution subset) is
decoded again and again. This cache keeps each reader's decodes, keyed by (sample, reduction),
least recently used out first, within a byte budget per reader; an image larger than a quarter
of the budget is never kept, so one huge decode cannot flush everything else. The pixels are
exactly the decoder's either way, so cached runs draw the very same patches.

The cache lives in the process that reads: an in-process loader (the CPU default) keeps it for
the whole run; DataLoader workers (the GPU default) are started afresh each epoch, and there it
serves only the repeats within an epoch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from .decode import Decoded


def decoded_bytes(decoded: Decoded) -> int:
    image = decoded.image
    return image.width * image.height * len(image.getbands())


class DecodeCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.used = 0
        self.hits = 0  # for tests and benchmarks; the loader's counters leave it out (sampler.py)
        self._items: OrderedDict[tuple[str, int], Decoded] = OrderedDict()

    def get(self, key: str, reduction: int, decode: Callable[[], Decoded]) -> Decoded:
        """The decode of `key` at `reduction`: kept, or made now by `decode` (and kept if it fits)."""
        slot = (key, reduction)
        if slot in self._items:
            self._items.move_to_end(slot)
            self.hits += 1
            return self._items[slot]
        decoded = decode()
        size = decoded_bytes(decoded)
        if size <= self.max_bytes // 4:
            self._items[slot] = decoded
            self.used += size
            while self.used > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.used -= decoded_bytes(old)
        return decoded
