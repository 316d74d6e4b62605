"""Seeds as users write them (`0-15,42`), and the latent each one names.

A seed's latent is numpy's RandomState(seed) normal draw, as StyleGAN's generators do: the
same image on any device, in any batch, in any version of torch.
"""

from __future__ import annotations

import argparse
import re

import numpy as np

MAX_SEED = 2**32 - 1  # RandomState takes 32-bit seeds
MAX_SEEDS = 100_000  # images in one call: far more than anyone looks at, and still a bounded list

_PART = re.compile(r"([0-9]+)(?:-([0-9]+))?")


def parse_seeds(text: str) -> list[int]:
    """`0-15,42` -> [0, ..., 15, 42]: ranges inclusive, order kept, repeats dropped."""
    seeds: dict[int, None] = {}  # an ordered set
    parts = text.split(",")
    for part in parts:
        match = _PART.fullmatch(part.strip())
        if not match:
            raise argparse.ArgumentTypeError(f"not a seed list: {text!r} (e.g. 0-15,42)")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high > MAX_SEED:
            raise argparse.ArgumentTypeError(f"seeds must be at most {MAX_SEED}, got {high}")
        if high < low:
            raise argparse.ArgumentTypeError(f"empty seed range {part.strip()!r}: write low-high")
        if high - low + 1 + len(seeds) > MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"at most {MAX_SEEDS} seeds at a time")
        seeds.update(dict.fromkeys(range(low, high + 1)))
    return list(seeds)


def latent(seed: int, z_dim: int) -> np.ndarray:
    return np.random.RandomState(seed).randn(1, z_dim)
