"""Checkpoints: plain state_dicts and plain Python values, written atomically.

Everything a run needs to continue as if never stopped: networks, EMA, optimisers, the step,
every rank's RNG states (torch, numpy, python and the latent generator), each data stream's
position, and the resolved config. Loading uses weights_only=True: a checkpoint is data, never
code. RNG states are stored as tensors and lists so that the safe loader accepts them.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import torch

from shards.atomic import atomic_write

CHECKPOINT = "checkpoint.pt"


def rng_state(latents: torch.Generator) -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "latents": latents.get_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }


def set_rng_state(state: dict, latents: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    latents.set_state(state["latents"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))


def save(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())  # a kill mid-write leaves the previous checkpoint intact


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
