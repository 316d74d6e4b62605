"""Checkpoints: plain state_dicts and plain Python values, written atomically.

Everything a run needs to continue as if never stopped: networks, EMA, optimisers, the step,
every rank's RNG states (torch, numpy, python and the latent generator), each data stream's
position, and the resolved config. Loading uses weights_only=True: a checkpoint is data, never
code. RNG states are stored as tensors and lists so that the safe loader accepts them.

`load_generator` is the one way to build a network from a file; a run that needs the whole
state reads it with `read` and builds its generators with `build_generator`.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import torch

from shards.atomic import atomic_write

from ..errors import TrainingError
from ..networks.discriminator import DiscriminatorConfig
from ..networks.generator import Generator, GeneratorConfig

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


def read(path: Path, what: str = "checkpoint") -> dict:
    """A training checkpoint's state, or a TrainingError saying why `path` is not one."""
    if not path.is_file():
        raise TrainingError(f"{what} {path} does not exist")
    try:
        state = load(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise TrainingError(f"{what} {path} is not a training checkpoint: {type(exc).__name__}") from None
    if not isinstance(state, dict) or "trainer" not in state or "config" not in state:
        raise TrainingError(f"{what} {path} is not a training checkpoint")
    return state


def network_configs(state: dict) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """The architectures a checkpoint was written with, from its saved config's g and d."""
    saved = state["config"]
    g = dict(saved["g"])
    g["channels"] = tuple(g["channels"])
    return GeneratorConfig(**g), DiscriminatorConfig(**saved["d"])


def build_generator(cfg: GeneratorConfig, weights: dict) -> Generator:
    """A frozen generator of architecture `cfg` holding `weights`, on the CPU."""
    g = Generator(cfg)
    g.load_state_dict(weights)
    return g.eval().requires_grad_(False)


def load_generator(path: Path, which: str = "G_ema") -> Generator:
    """The generator `which` (G_ema, or G) of the checkpoint at `path`, frozen, on the CPU."""
    state = read(Path(path))
    return build_generator(network_configs(state)[0], state["trainer"][which])
