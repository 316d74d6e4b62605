"""A batch as the loader hands it over: the patches' tensors, and the bookkeeping that travels with them.

Every real patch travels with T, S, its canvas box, its native size and its key (DESIGN.md 3);
`counts` and `reader` are the loader's running skip and yield counters, so that training can log
them without a side channel from the worker processes.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from .sampler import Patch

TENSORS = ("image", "transform", "scale", "canvas", "centre", "native_size", "mirror")


@dataclass(frozen=True)
class Batch:
    image: torch.Tensor  # b x 3 x p x p: uint8, or float in [-1, 1]
    transform: torch.Tensor  # b x 3 x 3 float32: canvas = T @ patch
    scale: torch.Tensor  # b float64: S
    canvas: torch.Tensor  # b x 3 int64: (ox, oy, N) in native pixels
    centre: torch.Tensor  # b x 2 float64: (cu, cv)
    native_size: torch.Tensor  # b x 2 int64: display (W, H)
    mirror: torch.Tensor  # b bool: flipped left to right; T's cu is then -centre's cu
    key: list[str]
    counts: dict[str, int]  # the reader's running totals when this batch left it
    reader: int  # which reader (rank x worker) made it

    def __len__(self) -> int:
        return len(self.key)

    def pin_memory(self) -> Batch:
        # DataLoader(pin_memory=True) calls this on any type it does not know.
        return dataclasses.replace(self, **{name: getattr(self, name).pin_memory() for name in TENSORS})


def collate(patches: list[Patch], dtype: str, counts: Counter, reader: int) -> Batch:
    images = torch.from_numpy(np.stack([p.pixels for p in patches])).permute(0, 3, 1, 2).contiguous()
    if dtype == "float":
        images = images.float().div_(127.5).sub_(1.0)
    return Batch(
        image=images,
        transform=torch.from_numpy(np.stack([p.draw.transform() for p in patches]).astype(np.float32)),
        scale=torch.tensor([p.draw.scale for p in patches], dtype=torch.float64),
        canvas=torch.tensor([[p.draw.canvas.ox, p.draw.canvas.oy, p.draw.canvas.n] for p in patches]),
        centre=torch.tensor([[p.draw.cu, p.draw.cv] for p in patches], dtype=torch.float64),
        native_size=torch.tensor([p.native_size for p in patches]),
        mirror=torch.tensor([p.draw.mirror for p in patches], dtype=torch.bool),
        key=[p.key for p in patches],
        counts=dict(counts),
        reader=reader,
    )


class LoaderStats:
    """Skip and yield counts summed over every reader of this rank, from the batches it saw."""

    def __init__(self) -> None:
        self._latest: dict[int, dict[str, int]] = {}

    def update(self, batch: Batch) -> None:
        self._latest[batch.reader] = batch.counts

    def totals(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for counts in self._latest.values():
            total.update(counts)
        return dict(total)
